//! Parsing: pest grammar → [`Expr`] tree, with precedence climbing for binary operators.

use pest::Parser as _;
use pest::iterators::Pair;

use super::ast::{BinaryOp, Expr, ExprKind, Literal, Macro, UnaryOp};
use crate::limits::Limits;

#[derive(pest_derive::Parser)]
#[grammar = "grammar/condition.pest"]
struct ConditionParser;

// the parser recurses: these bounds keep it shallow
const MAX_EXPR_LEN: usize = Limits::MAX_EXPR_LEN;
const MAX_EXPR_DEPTH: usize = Limits::MAX_EXPR_DEPTH;
const MAX_EXPR_NESTING: usize = Limits::MAX_EXPR_NESTING;

/// Why an expression does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// It is not in the grammar (or too long, or a literal out of range).
    Syntax,
    /// It nests deeper than [`Limits::MAX_EXPR_DEPTH`].
    TooDeep,
}

/// A parse failure: what and where (byte range in the expression text).
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// Which kind of failure.
    pub kind: ParseErrorKind,
    /// What is wrong.
    pub message: String,
    /// Where.
    pub span: (usize, usize),
    /// How to fix it.
    pub help: String,
}

/// Words no identifier may be (a context field, a comprehension variable): CEL's
/// reserved words (langdef: "reserved identifiers", which cel-go refuses), and the
/// literals and the operator that the grammar reads as such (its `keyword` rule), so
/// that a field so named could never be written in a condition.
pub const RESERVED_WORDS: [&str; 20] = [
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
    "true",
    "false",
    "null",
];

/// Whether `name` is a reserved word ([`RESERVED_WORDS`]) or the operator `in`.
#[must_use]
pub fn is_reserved(name: &str) -> bool {
    name == "in" || RESERVED_WORDS.contains(&name)
}

fn err(message: impl Into<String>, span: (usize, usize), help: impl Into<String>) -> ParseError {
    ParseError {
        kind: ParseErrorKind::Syntax,
        message: message.into(),
        span,
        help: help.into(),
    }
}

/// An expression nested past [`Limits::MAX_EXPR_DEPTH`] (brackets, prefix operators)
/// or [`Limits::MAX_EXPR_NESTING`] (operations): the help names the limit.
fn too_deep(message: String, span: (usize, usize), help: String) -> ParseError {
    ParseError {
        kind: ParseErrorKind::TooDeep,
        message,
        span,
        help,
    }
}

/// The help of a bracket or prefix-operator run past [`Limits::MAX_EXPR_DEPTH`].
fn depth_help() -> String {
    format!(
        "flowc accepts at most {MAX_EXPR_DEPTH} levels of brackets or prefix operators (`Limits::MAX_EXPR_DEPTH`): split the condition over several steps or rules"
    )
}

fn rule_name(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::expr | Rule::chain | Rule::unary | Rule::postfixed => "an expression",
        Rule::EOI => "the end of the expression",
        Rule::ident => "a name",
        Rule::int | Rule::uint | Rule::double => "a number",
        Rule::string => "a string",
        Rule::colon => "`:`",
        Rule::question => "`?`",
        Rule::or | Rule::and => "a logical operator",
        Rule::eq | Rule::ne | Rule::lt | Rule::le | Rule::gt | Rule::ge | Rule::in_op => {
            "a comparison"
        }
        Rule::add | Rule::sub | Rule::mul | Rule::div | Rule::rem => "an operator",
        Rule::args => "arguments",
        Rule::index | Rule::member | Rule::method_call => "`.` or `[`",
        _ => return None,
    })
}

/// The grammar recurses per bracket and per prefix operator: bound the nesting before
/// pest sees it (a run of `!`/`-` is as deep as its length).
fn check_nesting(text: &str) -> Result<(), ParseError> {
    let mut depth = 0usize;
    let mut unary = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '!' | '-' => unary += 1,
            c if c.is_whitespace() => {}
            _ => unary = 0,
        }
        if unary > MAX_EXPR_DEPTH {
            return Err(too_deep(
                format!("expression nests deeper than {MAX_EXPR_DEPTH} levels"),
                (i, i + 1),
                depth_help(),
            ));
        }
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_EXPR_DEPTH {
                    return Err(too_deep(
                        format!("expression nests deeper than {MAX_EXPR_DEPTH} levels"),
                        (i, i + 1),
                        depth_help(),
                    ));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses one condition.
///
/// # Errors
/// A syntax error with its position.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    if text.len() > MAX_EXPR_LEN {
        return Err(err(
            format!("expression is longer than {MAX_EXPR_LEN} bytes"),
            (0, 0),
            "split the logic over several steps or rules",
        ));
    }
    check_nesting(text)?;
    let mut pairs = ConditionParser::parse(Rule::condition, text).map_err(|e| {
        let (start, end) = match e.location {
            pest::error::InputLocation::Pos(p) => (p, p),
            pest::error::InputLocation::Span(s) => s,
        };
        let found = text
            .get(start..)
            .and_then(|r| r.chars().next())
            .map_or_else(|| "end of expression".to_owned(), |c| format!("`{c}`"));
        let expected: Vec<&str> = match &e.variant {
            pest::error::ErrorVariant::ParsingError { positives, .. } => {
                let mut v: Vec<&str> = positives.iter().filter_map(|r| rule_name(*r)).collect();
                v.sort_unstable();
                v.dedup();
                v
            }
            pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
        };
        let end = if end > start {
            end
        } else {
            text.get(start..)
                .and_then(|r| r.chars().next())
                .map_or(start, |c| start + c.len_utf8())
        };
        if let Some(quote) = text.get(start..).and_then(unterminated_string) {
            return err(
                "unterminated string",
                (start, end),
                format!(
                    "close the string with {quote} on the same line; a string over several lines is written in triple quotes ({quote}{quote}{quote}...{quote}{quote}{quote}), a line break inside one as `\\n`"
                ),
            );
        }
        let help = if expected.is_empty() {
            "check the expression syntax (CEL)".to_owned()
        } else {
            format!("expected {}", expected.join(" or "))
        };
        err(format!("unexpected {found}"), (start, end), help)
    })?;
    let cond = pairs
        .next()
        .ok_or_else(|| err("empty expression", (0, 0), "write a condition"))?;
    let expr = cond
        .into_inner()
        .next()
        .ok_or_else(|| err("empty expression", (0, 0), "write a condition"))?;
    let e = build_expr(expr)?;
    let mut too_big: Option<(usize, usize)> = None;
    e.walk(&mut |n| {
        if let ExprKind::Lit(Literal::Int(i64::MIN)) = n.kind
            && !text
                .get(n.span.0..n.span.1)
                // a parenthesised literal keeps the parentheses' span: `(-9223372036854775808)`
                .is_some_and(|t| {
                    t.trim_start_matches(|c: char| c == '(' || c.is_whitespace())
                        .starts_with('-')
                })
        {
            too_big = Some(n.span);
        }
    });
    if let Some(span) = too_big {
        let written = text
            .get(span.0..span.1)
            .unwrap_or_default()
            .trim_matches(|c: char| c == '(' || c == ')' || c.is_whitespace());
        return Err(err(
            format!("integer literal `{written}` is out of range"),
            span,
            "int literals must fit in 64 bits (use a double or a uint)",
        ));
    }
    // the deepest path ends at a leaf (a name or a literal), which is no operation
    let nesting = depth_of(&e).saturating_sub(1);
    if nesting > MAX_EXPR_NESTING {
        return Err(too_deep(
            format!(
                "expression nests {nesting} operations inside one another, more than the limit of {MAX_EXPR_NESTING}"
            ),
            e.span,
            format!(
                "an operator, call or macro in an operand of another is one level more (`Limits::MAX_EXPR_NESTING`, {MAX_EXPR_NESTING}): split the condition over several rules, or write a long `+` chain in shorter parts (long `&&`/`||` chains are fine)"
            ),
        ));
    }
    Ok(e)
}

/// The quote of a string (or bytes) literal that starts `rest` and is never closed:
/// `"` and `'` strings end on their line, triple-quoted ones anywhere.
fn unterminated_string(rest: &str) -> Option<char> {
    let body = rest.trim_start_matches(['r', 'R', 'b', 'B']);
    if rest.len() - body.len() > 2 {
        return None;
    }
    let quote = body.chars().next().filter(|c| matches!(c, '"' | '\''))?;
    let triple: String = [quote; 3].iter().collect();
    if let Some(inner) = body.strip_prefix(triple.as_str()) {
        return (!inner.contains(triple.as_str())).then_some(quote);
    }
    let mut chars = body.chars().skip(1);
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '\n' | '\r' => return Some(quote),
            c if c == quote => return None,
            _ => {}
        }
    }
    Some(quote)
}

fn depth_of(e: &Expr) -> usize {
    // iterative, so a pathological tree cannot overflow the stack here
    let mut max = 0;
    let mut stack = vec![(e, 1usize)];
    while let Some((n, d)) = stack.pop() {
        max = max.max(d);
        let mut children: Vec<&Expr> = Vec::new();
        match &n.kind {
            ExprKind::Lit(_) | ExprKind::Ident(_) | ExprKind::HasVar(_) => {}
            ExprKind::Select(a, _) | ExprKind::Unary(_, a) | ExprKind::Has(a, _) => {
                children.push(a);
            }
            ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
                children.push(a);
                children.push(b);
            }
            ExprKind::Call { target, args, .. } => {
                children.extend(target.as_deref());
                children.extend(args.iter());
            }
            ExprKind::List(items) => children.extend(items.iter()),
            ExprKind::Map(entries) => {
                for (k, v) in entries {
                    children.push(k);
                    children.push(v);
                }
            }
            ExprKind::Cond(a, b, c) => children.extend([&**a, &**b, &**c]),
            ExprKind::Comprehension {
                range,
                body,
                filter,
                ..
            } => {
                children.push(range);
                children.push(body);
                children.extend(filter.as_deref());
            }
        }
        stack.extend(children.into_iter().map(|c| (c, d + 1)));
    }
    max
}

fn span_of(p: &Pair<'_, Rule>) -> (usize, usize) {
    let s = p.as_span();
    (s.start(), s.end())
}

fn build_expr(p: Pair<'_, Rule>) -> Result<Expr, ParseError> {
    // expr = chain (? chain : expr)?
    let span = span_of(&p);
    let mut inner = p.into_inner();
    let first = inner
        .next()
        .ok_or_else(|| err("empty expression", span, "write an expression"))?;
    let cond = build_chain(first)?;
    if inner.next().is_none() {
        return Ok(cond);
    }
    let a = inner
        .next()
        .ok_or_else(|| err("incomplete `?:`", span, "write `c ? a : b`"))?;
    let _colon = inner.next();
    let b = inner
        .next()
        .ok_or_else(|| err("incomplete `?:`", span, "write `c ? a : b`"))?;
    Ok(Expr::new(
        ExprKind::Cond(
            Box::new(cond),
            Box::new(build_chain(a)?),
            Box::new(build_expr(b)?),
        ),
        span,
    ))
}

fn binop(r: Rule) -> Option<BinaryOp> {
    Some(match r {
        Rule::or => BinaryOp::Or,
        Rule::and => BinaryOp::And,
        Rule::eq => BinaryOp::Eq,
        Rule::ne => BinaryOp::Ne,
        Rule::lt => BinaryOp::Lt,
        Rule::le => BinaryOp::Le,
        Rule::gt => BinaryOp::Gt,
        Rule::ge => BinaryOp::Ge,
        Rule::in_op => BinaryOp::In,
        Rule::add => BinaryOp::Add,
        Rule::sub => BinaryOp::Sub,
        Rule::mul => BinaryOp::Mul,
        Rule::div => BinaryOp::Div,
        Rule::rem => BinaryOp::Rem,
        _ => return None,
    })
}

fn build_chain(p: Pair<'_, Rule>) -> Result<Expr, ParseError> {
    let mut operands = Vec::new();
    let mut ops = Vec::new();
    for item in p.into_inner() {
        match item.as_rule() {
            Rule::unary => operands.push(build_unary(item)?),
            r => {
                if let Some(op) = binop(r) {
                    ops.push(op);
                }
            }
        }
    }
    // precedence climbing over the flat operand/operator list (all left-associative)
    let mut out: Vec<Expr> = Vec::new();
    let mut stack: Vec<BinaryOp> = Vec::new();
    let mut operands = operands.into_iter();
    let reduce = |out: &mut Vec<Expr>, op: BinaryOp| -> Result<(), ParseError> {
        let r = out.pop();
        let l = out.pop();
        match (l, r) {
            (Some(l), Some(r)) => {
                let span = (l.span.0, r.span.1);
                out.push(Expr::new(
                    ExprKind::Binary(op, Box::new(l), Box::new(r)),
                    span,
                ));
                Ok(())
            }
            _ => Err(err("missing operand", (0, 0), "complete the expression")),
        }
    };
    if let Some(first) = operands.next() {
        out.push(first);
    }
    for op in ops {
        while let Some(&top) = stack.last() {
            if top.precedence() >= op.precedence() {
                stack.pop();
                reduce(&mut out, top)?;
            } else {
                break;
            }
        }
        stack.push(op);
        if let Some(next) = operands.next() {
            out.push(next);
        }
    }
    while let Some(op) = stack.pop() {
        reduce(&mut out, op)?;
    }
    out.pop()
        .map(balance_logic)
        .ok_or_else(|| err("empty expression", (0, 0), "write an expression"))
}

/// Longest chain of one logical operator (`a || b || …`) kept in its written,
/// left-nested shape; a longer one is rebuilt balanced.
const LOGIC_CHAIN_KEPT: usize = 16;

/// A long chain of `&&` (or of `||`) as a balanced tree of the same operands in the
/// same order: `&&` and `||` are associative in CEL (errors included: an error is
/// absorbed by a deciding operand on either side, and the operands are still evaluated
/// left to right up to the first deciding one), so only the nesting changes. A flat
/// chain of 1,000 comparisons then nests about 10 operators deep, within
/// [`Limits::MAX_EXPR_NESTING`]. An `&&` chain that is an operand of `||` is balanced
/// the same way.
fn balance_logic(e: Expr) -> Expr {
    let ExprKind::Binary(op @ (BinaryOp::And | BinaryOp::Or), ..) = e.kind else {
        return e;
    };
    // the left spine of the chain, iteratively: `((a || b) || c) || d` is a, [b, c, d]
    let mut rest = Vec::new();
    let mut first = e;
    while let ExprKind::Binary(o, l, r) = first.kind {
        if o != op {
            first = Expr::new(ExprKind::Binary(o, l, r), first.span);
            break;
        }
        rest.push(balance_logic(*r));
        first = *l;
    }
    rest.reverse();
    let first = balance_logic(first);
    if rest.len() < LOGIC_CHAIN_KEPT {
        return rest.into_iter().fold(first, |l, r| join(op, l, r));
    }
    balanced(op, first, rest)
}

fn join(op: BinaryOp, l: Expr, r: Expr) -> Expr {
    let span = (l.span.0, r.span.1);
    Expr::new(ExprKind::Binary(op, Box::new(l), Box::new(r)), span)
}

/// `first` and `rest`, in order, as a balanced tree of `op`.
fn balanced(op: BinaryOp, first: Expr, mut rest: Vec<Expr>) -> Expr {
    // the left half takes `first` and the first `k` of `rest`
    let k = rest.len() / 2;
    let mut right = rest.split_off(k);
    if right.is_empty() {
        return first;
    }
    let head = right.remove(0);
    let left = if rest.is_empty() {
        first
    } else {
        balanced(op, first, rest)
    };
    join(op, left, balanced(op, head, right))
}

fn build_unary(p: Pair<'_, Rule>) -> Result<Expr, ParseError> {
    let mut prefixes = Vec::new();
    let mut operand = None;
    let mut bare_number = false;
    for item in p.into_inner() {
        match item.as_rule() {
            Rule::not => prefixes.push((UnaryOp::Not, span_of(&item).0)),
            Rule::neg => prefixes.push((UnaryOp::Neg, span_of(&item).0)),
            _ => {
                let mut inner = item.clone().into_inner();
                bare_number = inner
                    .next()
                    .is_some_and(|f| matches!(f.as_rule(), Rule::int | Rule::double))
                    && inner.next().is_none();
                operand = Some(build_postfixed(item)?);
            }
        }
    }
    let mut e = operand.ok_or_else(|| err("missing operand", (0, 0), "complete the expression"))?;
    while let Some((op, start)) = prefixes.pop() {
        let span = (start, e.span.1);
        // `-` directly on a number literal is part of the literal (so i64::MIN parses)
        let fold = bare_number;
        bare_number = false;
        e = match (op, &e.kind) {
            (UnaryOp::Neg, ExprKind::Lit(Literal::Int(i))) if fold => {
                // `9223372036854775808` is read as i64::MIN and is valid only negated
                Expr::new(ExprKind::Lit(Literal::Int(i.wrapping_neg())), span)
            }
            (UnaryOp::Neg, ExprKind::Lit(Literal::Double(d))) if fold => {
                Expr::new(ExprKind::Lit(Literal::Double(-*d)), span)
            }
            _ => Expr::new(ExprKind::Unary(op, Box::new(e)), span),
        };
    }
    Ok(e)
}

fn build_postfixed(p: Pair<'_, Rule>) -> Result<Expr, ParseError> {
    let mut inner = p.into_inner();
    let prim = inner
        .next()
        .ok_or_else(|| err("missing operand", (0, 0), "complete the expression"))?;
    let mut e = build_primary(prim)?;
    for post in inner {
        let span = (e.span.0, span_of(&post).1);
        e = match post.as_rule() {
            Rule::member => {
                let name = post
                    .into_inner()
                    .next()
                    .map(|i| i.as_str().trim_matches('`').to_owned())
                    .unwrap_or_default();
                Expr::new(ExprKind::Select(Box::new(e), name), span)
            }
            Rule::index => {
                let idx = post
                    .into_inner()
                    .next()
                    .ok_or_else(|| err("empty index", span, "write `a[i]`"))?;
                Expr::new(
                    ExprKind::Index(Box::new(e), Box::new(build_expr(idx)?)),
                    span,
                )
            }
            Rule::method_call => {
                let mut it = post.into_inner();
                let name = it.next().map(|i| i.as_str().to_owned()).unwrap_or_default();
                let args = match it.next() {
                    Some(a) => a
                        .into_inner()
                        .map(build_expr)
                        .collect::<Result<Vec<_>, _>>()?,
                    None => Vec::new(),
                };
                make_call(Some(e), name, args, span)?
            }
            _ => e,
        };
    }
    Ok(e)
}

fn make_call(
    target: Option<Expr>,
    name: String,
    mut args: Vec<Expr>,
    span: (usize, usize),
) -> Result<Expr, ParseError> {
    let macro_kind = Macro::named(&name);
    if let (Some(kind), Some(range)) = (macro_kind, target.as_ref()) {
        let arity_ok = args.len() == 2 || (kind == Macro::Map && args.len() == 3);
        if !arity_ok {
            return Err(err(
                format!("`{name}` takes a variable and an expression"),
                span,
                format!("write `list.{name}(x, <expression using x>)`"),
            ));
        }
        let var = if let Some(ExprKind::Ident(v)) = &args.first().map(|a| &a.kind) {
            v.clone()
        } else {
            let s = args.first().map_or(span, |a| a.span);
            return Err(err(
                format!("the first argument of `{name}` must be a variable name"),
                s,
                format!("write `list.{name}(x, ...)`"),
            ));
        };
        let body = args
            .pop()
            .ok_or_else(|| err("missing argument", span, "complete the macro"))?;
        let filter = if args.len() == 2 {
            args.pop().map(Box::new)
        } else {
            None
        };
        return Ok(Expr::new(
            ExprKind::Comprehension {
                kind,
                range: Box::new(range.clone()),
                var,
                body: Box::new(body),
                filter,
            },
            span,
        ));
    }
    if name == "has" && target.is_none() {
        return match args.as_slice() {
            [
                Expr {
                    kind: ExprKind::Select(operand, field),
                    ..
                },
            ] => Ok(Expr::new(
                ExprKind::Has(operand.clone(), field.clone()),
                span,
            )),
            [
                Expr {
                    kind: ExprKind::Ident(name),
                    ..
                },
            ] => Ok(Expr::new(ExprKind::HasVar(name.clone()), span)),
            _ => Err(err(
                "`has` takes a field selection or a context variable",
                span,
                "write `has(object.field)` or `has(variable)`",
            )),
        };
    }
    Ok(Expr::new(
        ExprKind::Call {
            target: target.map(Box::new),
            name,
            args,
        },
        span,
    ))
}

#[expect(clippy::too_many_lines, reason = "one arm per kind of primary")]
fn build_primary(p: Pair<'_, Rule>) -> Result<Expr, ParseError> {
    let span = span_of(&p);
    let lit = |l: Literal| Ok(Expr::new(ExprKind::Lit(l), span));
    match p.as_rule() {
        Rule::paren => {
            let inner = p
                .into_inner()
                .next()
                .ok_or_else(|| err("empty parentheses", span, "write an expression inside"))?;
            let mut e = build_expr(inner)?;
            e.span = span;
            Ok(e)
        }
        Rule::ident if is_reserved(p.as_str()) => Err(err(
            format!("`{}` is a reserved word in CEL", p.as_str()),
            span,
            "CEL reserves this word: no context field or comprehension variable is named so; choose another name",
        )),
        Rule::ident => Ok(Expr::new(ExprKind::Ident(p.as_str().to_owned()), span)),
        Rule::dotted_ident => Ok(Expr::new(
            ExprKind::Ident(p.as_str().trim_start_matches('.').to_owned()),
            span,
        )),
        Rule::global_call => {
            let mut it = p.into_inner();
            let name = it.next().map(|i| i.as_str().to_owned()).unwrap_or_default();
            let args = match it.next() {
                Some(a) => a
                    .into_inner()
                    .map(build_expr)
                    .collect::<Result<Vec<_>, _>>()?,
                None => Vec::new(),
            };
            make_call(None, name, args, span)
        }
        Rule::list => Ok(Expr::new(
            ExprKind::List(p.into_inner().map(build_expr).collect::<Result<_, _>>()?),
            span,
        )),
        Rule::map => {
            let mut entries = Vec::new();
            for entry in p.into_inner() {
                let mut kv = entry.into_inner();
                let (Some(k), Some(v)) = (kv.next(), kv.next()) else {
                    return Err(err("incomplete map entry", span, "write `key: value`"));
                };
                entries.push((build_expr(k)?, build_expr(v)?));
            }
            Ok(Expr::new(ExprKind::Map(entries), span))
        }
        Rule::bool_lit => lit(Literal::Bool(p.as_str() == "true")),
        Rule::null_lit => lit(Literal::Null),
        Rule::int => {
            let t = p.as_str();
            let v = parse_int_text(t).and_then(|u| i64::try_from(u).ok());
            match v {
                Some(i) => lit(Literal::Int(i)),
                // only 2^63 (`-9223372036854775808`, `-0x8000000000000000`) may exceed
                // i64::MAX before negation: cel-go reads the sign as part of the literal
                None if parse_int_text(t) == Some(1 << 63) => lit(Literal::Int(i64::MIN)),
                None => Err(err(
                    format!("integer literal `{t}` is out of range"),
                    span,
                    "int literals must fit in 64 bits (use a double or a uint)",
                )),
            }
        }
        Rule::uint => {
            let t = p.as_str();
            match parse_int_text(&t[..t.len() - 1]) {
                Some(u) => lit(Literal::Uint(u)),
                None => Err(err(
                    format!("uint literal `{t}` is out of range"),
                    span,
                    "uint literals must fit in 64 bits",
                )),
            }
        }
        Rule::double => match p.as_str().parse::<f64>() {
            // as cel-go: a literal beyond the largest double is no double
            Ok(d) if d.is_infinite() => Err(err(
                format!("double literal `{}` is out of range", p.as_str()),
                span,
                "double literals must be at most 1.7976931348623157e308 in size",
            )),
            Ok(d) => lit(Literal::Double(d)),
            Err(_) => Err(err("invalid number", span, "write a number like `1.5`")),
        },
        Rule::string => {
            let (raw, body, offset) = string_body(p.as_str());
            match unescape(body, raw, false) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(s) => lit(Literal::String(s)),
                    Err(_) => Err(err("invalid string", span, "strings must be valid UTF-8")),
                },
                Err((m, at)) => Err(err(
                    m,
                    escape_span(span.0 + offset, body, at),
                    "valid escapes: \\n \\t \\\\ \\\" \\' \\xHH \\uHHHH \\UHHHHHHHH \\ooo",
                )),
            }
        }
        Rule::bytes => {
            let (raw, body, offset) = string_body(&p.as_str()[1..]);
            match unescape(body, raw, true) {
                Ok(b) => lit(Literal::Bytes(b)),
                Err((m, at)) => Err(err(
                    m,
                    escape_span(span.0 + 1 + offset, body, at),
                    "valid escapes in bytes: \\n \\t \\\\ \\xHH \\ooo (a byte each); write a character beyond ASCII as itself or as its UTF-8 bytes (`\\xe4\\xb8\\xad`)",
                )),
            }
        }
        _ => Err(err("unexpected token", span, "check the expression syntax")),
    }
}

fn parse_int_text(t: &str) -> Option<u64> {
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        t.parse::<u64>().ok()
    }
}

/// The span of the escape at byte `at` of a literal's `body` (which starts at byte `start`
/// of the expression): the backslash and the character after it.
fn escape_span(start: usize, body: &str, at: usize) -> (usize, usize) {
    let letter = body
        .get(at + 1..)
        .and_then(|r| r.chars().next())
        .map_or(0, char::len_utf8);
    (start + at, start + at + 1 + letter)
}

/// Splits `r"..."`, `'''...'''` etc. into (`is_raw`, body, the body's byte offset in `s`).
fn string_body(s: &str) -> (bool, &str, usize) {
    let (raw, s) = match s.strip_prefix(['r', 'R']) {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let quote = if s.starts_with("\"\"\"") || s.starts_with("'''") {
        3
    } else {
        1
    };
    let body = s.get(quote..s.len().saturating_sub(quote)).unwrap_or("");
    (raw, body, usize::from(raw) + quote)
}

/// The bytes a literal's body spells, or what is wrong and the byte offset (in `body`)
/// of the escape that is wrong.
fn unescape(body: &str, raw: bool, bytes: bool) -> Result<Vec<u8>, (String, usize)> {
    if raw {
        return Ok(body.as_bytes().to_vec());
    }
    let mut out = Vec::with_capacity(body.len());
    let mut indexed = body.char_indices();
    while let Some((at, c)) = indexed.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let mut chars = indexed.by_ref().map(|(_, c)| c);
        let Some(e) = chars.next() else {
            return Err(("unterminated escape sequence".to_owned(), at));
        };
        let fail = |m: String| Err((m, at));
        let push_char = |out: &mut Vec<u8>, cp: u32| -> Result<(), String> {
            let ch = char::from_u32(cp).ok_or_else(|| format!("invalid code point \\u{cp:x}"))?;
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            Ok(())
        };
        match e {
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '\\' | '\'' | '"' | '`' | '?' => out.push(u8::try_from(u32::from(e)).unwrap_or(b'?')),
            'u' | 'U' if bytes => {
                return fail(format!(
                    "`\\{e}` escapes are valid only in string literals, not in bytes literals"
                ));
            }
            'x' | 'X' | 'u' | 'U' => {
                let n = match e {
                    'x' | 'X' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n).filter_map(|_| chars.next()).collect();
                let cp = u32::from_str_radix(&hex, 16)
                    .map_err(|_| (format!("invalid escape `\\{e}{hex}`"), at))?;
                if matches!(e, 'u' | 'U') && (0xD800..0xE000).contains(&cp) {
                    return fail(format!("invalid code point `\\{e}{hex}` (a surrogate)"));
                }
                if bytes {
                    out.push(u8::try_from(cp).unwrap_or(0));
                } else {
                    push_char(&mut out, cp).map_err(|m| (m, at))?;
                }
            }
            '0'..='3' => {
                let d2 = chars.next();
                let d3 = chars.next();
                let oct: String = [Some(e), d2, d3].into_iter().flatten().collect();
                let cp = u32::from_str_radix(&oct, 8)
                    .map_err(|_| (format!("invalid escape `\\{oct}`"), at))?;
                if bytes {
                    out.push(u8::try_from(cp).unwrap_or(0));
                } else {
                    push_char(&mut out, cp).map_err(|m| (m, at))?;
                }
            }
            other => return fail(format!("invalid escape `\\{other}`")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Binary(op, a, b) => format!("({} {} {})", show(a), op.symbol(), show(b)),
            ExprKind::Ident(n) => n.clone(),
            ExprKind::Lit(Literal::Int(i)) => i.to_string(),
            ExprKind::Lit(Literal::Double(d)) => format!("{d:?}"),
            ExprKind::Unary(UnaryOp::Not, a) => format!("!{}", show(a)),
            ExprKind::Cond(a, b, c) => format!("({} ? {} : {})", show(a), show(b), show(c)),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn precedence() {
        let e = parse("a > 1 && b == 2 || c >= 3").unwrap();
        assert_eq!(show(&e), "(((a > 1) && (b == 2)) || (c >= 3))");
        let e = parse("a + b * c - d").unwrap();
        assert_eq!(show(&e), "((a + (b * c)) - d)");
        let e = parse("a ? b : c ? d : e").unwrap();
        assert_eq!(show(&e), "(a ? b : (c ? d : e))");
        assert_eq!(
            show(&parse("-9223372036854775808").unwrap()),
            "-9223372036854775808"
        );
        assert_eq!(show(&parse("!inside").unwrap()), "!inside");
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("amount > ").unwrap_err();
        assert_eq!(e.span.0, 9);
        let e = parse("amount >> 3").unwrap_err();
        assert_eq!(e.span, (8, 9));
    }
}
