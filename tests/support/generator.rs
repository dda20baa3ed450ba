//! The type-directed random expression generator over the whole supported CEL subset,
//! and its cases: every generated expression is well typed, so it must type-check and
//! compile, and both evaluation paths (the direct form and the sandboxed Rhai program)
//! must give the same value or the same kind of error on random contexts. One
//! generator for the CI-sized proptest runs (`tests/expr_gen.rs`, which takes it with
//! `mod support { pub mod generator; }`) and the coverage-guided runs under `cargo fuzz`
//! (`fuzz/fuzz_targets/expr_gen.rs`, which takes it by path as `generator`).
#![allow(dead_code, reason = "each runner uses a part of it")]

/// A case's outcome: `Err` says which expression on which context disagreed, and how.
pub type Outcome = Result<(), String>;

/// Fails the case with a message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use flowc::compile::{CompiledFlow, Options, compile};
use flowc::expr::check::Checker;
use flowc::expr::parse::parse;
use flowc::expr::{Direct, Value, check_expr, codegen};
use flowc::expr::{ExprError, ExprSource, Type};

/// A typed tree (the check's, or the checker's alone when the check refuses it).
struct Checked {
    expr: flowc::expr::Expr,
    ty: Type,
}
use flowc::sandbox::{Bindings, RunError};
use flowc::span::SourceFile;
use serde_json::json;

/// The declared context every expression is generated against: a variable of every
/// declarable type, lists and maps of them, objects, a list of objects and an optional.
const CONTEXT: &str = r#"
  b: bool
  i: int
  j: int
  u: uint
  d: double
  e: double
  s: string
  t: string
  ts: timestamp
  du: duration
  li: list<int>
  ld: list<double>
  ls: list<string>
  m: "map<string, int>"
  o:
    type: object
    fields:
      x: int
      name: string
      opt: { type: double, optional: true }
  items:
    type: list
    items:
      type: object
      fields:
        amount: double
        category: { type: string, enum: [travel, meal, gift] }
        note: { type: string, optional: true }
  ob: { type: string, optional: true }
  om: { type: "map<string, int>", optional: true }
"#;

fn flow() -> &'static Arc<CompiledFlow> {
    static F: std::sync::OnceLock<Arc<CompiledFlow>> = std::sync::OnceLock::new();
    F.get_or_init(|| build(&Options::default()))
}

/// The flow compiled for a sandbox whose string and list bounds are tiny (4 bytes, 2
/// elements), so that generated expressions run into them often: a `+` that builds a
/// longer string or list, a `map`/`filter` that keeps a third element, on either side
/// of `&&`/`||` and inside macros. Both paths must fail at the same point with the
/// same bound (or skip it the same way).
fn tight() -> &'static Arc<CompiledFlow> {
    static F: std::sync::OnceLock<Arc<CompiledFlow>> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let mut limits = flowc::limits::Limits::default();
        limits.sandbox.max_string_size = 4;
        limits.sandbox.max_array_size = 2;
        build(&Options::new(&limits))
    })
}

/// The small budgets generated expressions also run under: a generated expression
/// costs a few to a few hundred units on the generated contexts (comprehension steps,
/// elements `in` compares, bytes `+` builds), so each budget is passed by some and
/// exactly met by others. Both paths charge the same units in the same order, so they
/// must run out at the same point (decision 106).
const SMALL_BUDGETS: [u64; 8] = [0, 1, 2, 3, 5, 8, 13, 30];

/// The flow compiled with the `i`th small budget (modulo their count).
fn budgeted(i: u64) -> &'static Arc<CompiledFlow> {
    static F: std::sync::OnceLock<Vec<Arc<CompiledFlow>>> = std::sync::OnceLock::new();
    let flows = F.get_or_init(|| {
        SMALL_BUDGETS
            .iter()
            .map(|&budget| {
                let mut limits = flowc::limits::Limits::default();
                limits.sandbox.max_operations = budget;
                build(&Options::new(&limits))
            })
            .collect()
    });
    let n = flows.len() as u64;
    &flows[(i % n) as usize]
}

/// The default flow for half the seeds, the tight one for a third, a small budget for
/// the rest (a sixth).
fn flow_for(seed: u64) -> &'static Arc<CompiledFlow> {
    match seed % 6 {
        0 | 3 => tight(),
        1 => budgeted(seed / 6),
        _ => flow(),
    }
}

fn build(options: &Options) -> Arc<CompiledFlow> {
    let text = format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: gen\ncontext:{CONTEXT}steps:\n  - id: a\n    type: approval\n    assignees: {{ role: r }}\n"
    );
    let file = SourceFile::new("gen.yaml", text);
    match compile(&file, options) {
        Ok(f) => Arc::new(f),
        Err(d) => panic!("{:?}", d.iter().map(|x| x.message()).collect::<Vec<_>>()),
    }
}

/// The generator's types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum G {
    Bool,
    Int,
    Uint,
    Double,
    Str,
    Ts,
    Dur,
    ListInt,
    ListDouble,
    ListStr,
    ListBool,
    ListItem,
    MapInt,
    Obj,
    Item,
}

impl G {
    fn elem(self) -> Option<G> {
        Some(match self {
            G::ListInt => G::Int,
            G::ListDouble => G::Double,
            G::ListStr => G::Str,
            G::ListBool => G::Bool,
            G::ListItem => G::Item,
            _ => return None,
        })
    }

    #[allow(dead_code)]
    fn list_of(self) -> Option<G> {
        Some(match self {
            G::Int => G::ListInt,
            G::Double => G::ListDouble,
            G::Str => G::ListStr,
            G::Bool => G::ListBool,
            G::Item => G::ListItem,
            _ => return None,
        })
    }

    fn cel(self) -> Type {
        match self {
            G::Bool => Type::Bool,
            G::Int => Type::Int,
            G::Uint => Type::Uint,
            G::Double => Type::Double,
            G::Str => Type::String,
            G::Ts => Type::Timestamp,
            G::Dur => Type::Duration,
            G::MapInt => Type::map(Type::String, Type::Int),
            G::Obj | G::Item => Type::Dyn, // objects: compared by shape below
            l => Type::list(l.elem().map_or(Type::Dyn, G::cel)),
        }
    }
}

pub const ALL: [G; 15] = [
    G::Bool,
    G::Int,
    G::Uint,
    G::Double,
    G::Str,
    G::Ts,
    G::Dur,
    G::ListInt,
    G::ListDouble,
    G::ListStr,
    G::ListBool,
    G::ListItem,
    G::MapInt,
    G::Obj,
    G::Item,
];

/// splitmix64: small, deterministic, good enough to pick among alternatives.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

struct Gen {
    rng: Rng,
    locals: Vec<(String, G)>,
    fresh: usize,
}

const INTS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "7",
    "100",
    "9223372036854775807",
    "-9223372036854775808",
    "4611686018427387904",
];
const UINTS: &[&str] = &["0u", "1u", "2u", "10u", "18446744073709551615u"];
const DOUBLES: &[&str] = &[
    "0.0", "1.0", "1.5", "-2.5", "10.0", "1000.0", "1e308", "-0.0", "0.1", "3.0",
];
const STRINGS: &[&str] = &[
    r#""""#,
    r#""a""#,
    r#""ab""#,
    r#""travel""#,
    r#""meal""#,
    r#""é中""#,
    r#""12""#,
    r#""-3""#,
    r#""1.5""#,
    r#""A b""#,
];
const PATTERNS: &[&str] = &[r#""^a""#, r#""b$""#, r#""[0-9]+""#, r#""é|中""#, r#""""#];
const TIMESTAMPS: &[&str] = &[
    r#"timestamp("2024-01-01T00:00:00Z")"#,
    r#"timestamp("2024-02-29T23:59:59.5+08:00")"#,
    r#"timestamp("1970-01-01T00:00:00Z")"#,
    r#"timestamp("9999-12-31T23:59:59Z")"#,
];
const DURATIONS: &[&str] = &[
    r#"duration("1h")"#,
    r#"duration("-90s")"#,
    r#"duration("0s")"#,
    r#"duration("1.5s")"#,
    r#"duration("72h3m")"#,
];

fn lit(options: &[&'static str], r: &mut Rng) -> &'static str {
    options[r.below(options.len())]
}

impl Gen {
    fn var(&mut self, g: G) -> String {
        self.fresh += 1;
        let name = format!("x{}", self.fresh);
        self.locals.push((name.clone(), g));
        name
    }

    fn leaf(&mut self, g: G) -> String {
        let locals: Vec<String> = self
            .locals
            .iter()
            .filter(|(_, t)| *t == g)
            .map(|(n, _)| n.clone())
            .collect();
        if !locals.is_empty() && self.rng.chance(2) {
            return self.rng.pick(&locals).clone();
        }
        let r = &mut self.rng;
        match g {
            G::Bool => (*r.pick(&["true", "false", "b", "b", "has(o.opt)"])).to_owned(),
            G::Int => {
                let l = lit(INTS, r);
                *r.pick(&[l, "i", "j", "o.x", "i", "j"])
            }
            .to_owned(),
            G::Uint => {
                let l = lit(UINTS, r);
                *r.pick(&[l, "u", "u"])
            }
            .to_owned(),
            G::Double => {
                let l = lit(DOUBLES, r);
                *r.pick(&[l, "d", "e", "d"])
            }
            .to_owned(),
            G::Str => {
                let l = lit(STRINGS, r);
                *r.pick(&[l, "s", "t", "o.name", "s", "ob"])
            }
            .to_owned(),
            G::Ts => {
                let l = lit(TIMESTAMPS, r);
                *r.pick(&[l, "ts", "ts"])
            }
            .to_owned(),
            G::Dur => {
                let l = lit(DURATIONS, r);
                *r.pick(&[l, "du", "du"])
            }
            .to_owned(),
            G::ListInt => (*r.pick(&["li", "[1, 2, 3]", "[i, j]", "li"])).to_owned(),
            G::ListDouble => (*r.pick(&["ld", "[1.5, d]", "ld"])).to_owned(),
            G::ListStr => (*r.pick(&["ls", r#"["a", s]"#, "ls"])).to_owned(),
            G::ListBool => (*r.pick(&["[true, b]", "[b]"])).to_owned(),
            G::ListItem => "items".to_owned(),
            // `om`: an optional map, read in place like `m` (decision 125)
            G::MapInt => (*r.pick(&["m", r#"{"a": 1, "b": i}"#, "m", "om"])).to_owned(),
            G::Obj => "o".to_owned(),
            G::Item => (*r.pick(&["items[0]", "items[1]"])).to_owned(),
        }
    }

    /// A macro over a list (or map) giving `out` from a body of type `body`.
    fn macro_call(&mut self, depth: u32, range: G, kind: &str, body: G) -> String {
        let r = self.paren(range, depth);
        let elem = if range == G::MapInt {
            G::Str
        } else {
            range.elem().unwrap_or(G::Int)
        };
        let v = self.var(elem);
        let b = self.expr(body, depth - 1);
        let out = if kind == "map" && self.rng.chance(3) {
            let f = self.expr(G::Bool, depth - 1);
            format!("{r}.map({v}, {f}, {b})")
        } else {
            format!("{r}.{kind}({v}, {b})")
        };
        self.locals.pop();
        out
    }

    fn list_range(&mut self) -> G {
        *self.rng.pick(&[
            G::ListInt,
            G::ListDouble,
            G::ListStr,
            G::ListItem,
            G::MapInt,
            G::ListBool,
        ])
    }

    fn ternary(&mut self, g: G, depth: u32) -> String {
        let c = self.expr(G::Bool, depth - 1);
        let a = self.expr(g, depth - 1);
        let b = self.expr(g, depth - 1);
        format!("({c} ? {a} : {b})")
    }

    #[allow(clippy::too_many_lines)]
    fn expr(&mut self, g: G, depth: u32) -> String {
        if depth == 0 || self.rng.chance(4) {
            return self.leaf(g);
        }
        let d = depth;
        let choice = self.rng.below(14);
        match g {
            G::Bool => match choice {
                0 => {
                    let (x, y) = *self.rng.pick(&[
                        (G::Int, G::Int),
                        (G::Double, G::Double),
                        (G::Uint, G::Uint),
                        (G::Int, G::Double),
                        (G::Uint, G::Int),
                        (G::Double, G::Uint),
                        (G::Str, G::Str),
                        (G::Ts, G::Ts),
                        (G::Dur, G::Dur),
                        (G::Bool, G::Bool),
                    ]);
                    let op = *self.rng.pick(&["<", "<=", ">", ">="]);
                    format!("{} {op} {}", self.paren(x, d), self.paren(y, d))
                }
                1 => {
                    let t = *self.rng.pick(&ALL[..13]);
                    let op = *self.rng.pick(&["==", "!="]);
                    format!("{} {op} {}", self.paren(t, d), self.paren(t, d))
                }
                2 => format!("!{}", self.paren(G::Bool, d)),
                3 | 4 => {
                    let op = *self.rng.pick(&["&&", "||"]);
                    format!("{} {op} {}", self.paren(G::Bool, d), self.paren(G::Bool, d))
                }
                5 => {
                    let l = *self.rng.pick(&[
                        G::ListInt,
                        G::ListStr,
                        G::ListDouble,
                        G::MapInt,
                        G::ListBool,
                    ]);
                    let e = if l == G::MapInt {
                        G::Str
                    } else {
                        l.elem().unwrap_or(G::Int)
                    };
                    format!("{} in {}", self.paren(e, d), self.paren(l, d))
                }
                6 => {
                    let f = *self.rng.pick(&["startsWith", "endsWith", "contains"]);
                    format!(
                        "{}.{f}({})",
                        self.paren(G::Str, d),
                        self.expr(G::Str, d - 1)
                    )
                }
                7 => {
                    let p = *self.rng.pick(PATTERNS);
                    format!("{}.matches({p})", self.paren(G::Str, d))
                }
                8 | 9 => {
                    let range = self.list_range();
                    let kind = *self.rng.pick(&["all", "exists", "exists_one"]);
                    self.macro_call(d, range, kind, G::Bool)
                }
                10 => {
                    let item = self.expr(G::Item, d - 1);
                    format!("has({item}.note)")
                }
                11 => {
                    // heterogeneous equality at run time (`dyn(1) == 1u`)
                    let x = *self.rng.pick(&[G::Int, G::Uint, G::Double, G::Str]);
                    let y = *self.rng.pick(&[G::Int, G::Uint, G::Double, G::Str]);
                    let op = *self.rng.pick(&["==", "!="]);
                    format!(
                        "dyn({}) {op} dyn({})",
                        self.expr(x, d - 1),
                        self.expr(y, d - 1)
                    )
                }
                12 => format!(
                    "{}.matches({})",
                    self.paren(G::Str, d),
                    self.expr(G::Str, d - 1)
                ),
                _ => self.ternary(G::Bool, d),
            },
            G::Int => match choice {
                0..=3 => {
                    let op = *self.rng.pick(&["+", "-", "*", "/", "%"]);
                    format!("{} {op} {}", self.paren(G::Int, d), self.paren(G::Int, d))
                }
                4 => format!("-{}", self.paren(G::Int, d)),
                5 => {
                    let t =
                        *self
                            .rng
                            .pick(&[G::Str, G::ListInt, G::MapInt, G::ListItem, G::ListStr]);
                    format!("size({})", self.expr(t, d - 1))
                }
                6 => {
                    let t = *self.rng.pick(&[G::Double, G::Uint, G::Str, G::Int]);
                    format!("int({})", self.expr(t, d - 1))
                }
                7 => format!(
                    "{}[{}]",
                    self.paren(G::ListInt, d),
                    self.expr(G::Int, d - 1)
                ),
                8 => format!("{}[{}]", self.paren(G::MapInt, d), self.expr(G::Str, d - 1)),
                9 => {
                    let f =
                        *self
                            .rng
                            .pick(&["getHours", "getFullYear", "getDayOfWeek", "getMinutes"]);
                    format!("{}.{f}()", self.paren(G::Ts, d))
                }
                10 => {
                    let f = *self.rng.pick(&[
                        "getHours",
                        "getSeconds",
                        "getMinutes",
                        "getMilliseconds",
                    ]);
                    format!("{}.{f}()", self.paren(G::Dur, d))
                }
                11 => {
                    let t = *self.rng.pick(&[G::Str, G::ListInt, G::MapInt]);
                    format!("{}.size()", self.paren(t, d))
                }
                12 => {
                    let tz = *self.rng.pick(&[r#""+08:00""#, r#""-05:30""#, r#""UTC""#]);
                    format!("{}.getHours({tz})", self.paren(G::Ts, d))
                }
                _ => self.ternary(G::Int, d),
            },
            G::Uint => match choice {
                0..=4 => {
                    let op = *self.rng.pick(&["+", "-", "*", "/", "%"]);
                    format!("{} {op} {}", self.paren(G::Uint, d), self.paren(G::Uint, d))
                }
                5..=7 => {
                    let t = *self.rng.pick(&[G::Double, G::Int, G::Str]);
                    format!("uint({})", self.expr(t, d - 1))
                }
                _ => self.ternary(G::Uint, d),
            },
            G::Double => match choice {
                0..=3 => {
                    let op = *self.rng.pick(&["+", "-", "*", "/"]);
                    format!(
                        "{} {op} {}",
                        self.paren(G::Double, d),
                        self.paren(G::Double, d)
                    )
                }
                4 => format!("-{}", self.paren(G::Double, d)),
                5 | 6 => {
                    let t = *self.rng.pick(&[G::Int, G::Uint, G::Str, G::Double]);
                    format!("double({})", self.expr(t, d - 1))
                }
                7 => format!(
                    "{}[{}]",
                    self.paren(G::ListDouble, d),
                    self.expr(G::Int, d - 1)
                ),
                8 => format!("{}.amount", self.paren(G::Item, d)),
                // an optional field that may be absent: "no such key" on both paths
                9 => "o.opt".to_owned(),
                _ => self.ternary(G::Double, d),
            },
            G::Str => match choice {
                0..=2 => format!("{} + {}", self.paren(G::Str, d), self.paren(G::Str, d)),
                3..=5 => {
                    let t = *self.rng.pick(&[
                        G::Int,
                        G::Uint,
                        G::Double,
                        G::Str,
                        G::Bool,
                        G::Ts,
                        G::Dur,
                    ]);
                    format!("string({})", self.expr(t, d - 1))
                }
                6 => format!(
                    "{}[{}]",
                    self.paren(G::ListStr, d),
                    self.expr(G::Int, d - 1)
                ),
                7 => format!("{}.category", self.paren(G::Item, d)),
                8 => format!("{}.note", self.paren(G::Item, d)),
                9 => format!("{}.name", self.paren(G::Obj, d)),
                _ => self.ternary(G::Str, d),
            },
            G::Ts => match choice {
                0..=3 => {
                    let op = *self.rng.pick(&["+", "-"]);
                    format!("{} {op} {}", self.paren(G::Ts, d), self.paren(G::Dur, d))
                }
                4 => format!("{} + {}", self.paren(G::Dur, d), self.paren(G::Ts, d)),
                5 => {
                    let s = *self
                        .rng
                        .pick(&[r#""2024-01-01T00:00:00Z""#, r#""not a time""#]);
                    format!("timestamp({s})")
                }
                _ => self.ternary(G::Ts, d),
            },
            G::Dur => match choice {
                0..=3 => {
                    let op = *self.rng.pick(&["+", "-"]);
                    format!("{} {op} {}", self.paren(G::Dur, d), self.paren(G::Dur, d))
                }
                4..=6 => format!("{} - {}", self.paren(G::Ts, d), self.paren(G::Ts, d)),
                7 => format!("-{}", self.paren(G::Dur, d)),
                8 => {
                    // a literal that cannot convert is refused by check; a string made
                    // at run time fails on both paths instead
                    if self.rng.chance(3) {
                        format!("duration({})", self.expr(G::Str, d - 1))
                    } else {
                        let s = *self.rng.pick(&[r#""1h""#, r#""-1.5s""#]);
                        format!("duration({s})")
                    }
                }
                _ => self.ternary(G::Dur, d),
            },
            G::ListInt | G::ListDouble | G::ListStr | G::ListBool | G::ListItem => {
                let e = g.elem().unwrap_or(G::Int);
                match choice {
                    0 | 1 if g != G::ListItem => {
                        let n = 1 + self.rng.below(3);
                        let items: Vec<String> = (0..n).map(|_| self.expr(e, d - 1)).collect();
                        format!("[{}]", items.join(", "))
                    }
                    2 | 3 => format!("{} + {}", self.paren(g, d), self.paren(g, d)),
                    4..=6 => self.macro_call(d, g, "filter", G::Bool),
                    7..=9 if g != G::ListItem => {
                        let range = self.list_range();
                        self.macro_call(d, range, "map", e)
                    }
                    _ => self.ternary(g, d),
                }
            }
            G::MapInt => match choice {
                0..=3 => {
                    let k = self.expr(G::Str, d - 1);
                    let v = self.expr(G::Int, d - 1);
                    format!("{{{k}: {v}}}")
                }
                // two keys, which collide when they are equal (`s` and `t` often are,
                // `"a"` and `s` sometimes): CEL's ordinary error, absorbed alike on
                // both paths by `&&`/`||` and macros (decision 125)
                4..=5 => {
                    let k1 = self.expr(G::Str, d - 1);
                    let v1 = self.expr(G::Int, d - 1);
                    let k2 = (*self.rng.pick(&["s", "t", r#""a""#])).to_owned();
                    let v2 = self.expr(G::Int, d - 1);
                    format!("{{{k1}: {v1}, {k2}: {v2}}}")
                }
                _ => self.ternary(G::MapInt, d),
            },
            G::Obj => self.leaf(G::Obj),
            G::Item => match choice {
                0..=5 => format!(
                    "{}[{}]",
                    self.paren(G::ListItem, d),
                    self.expr(G::Int, d - 1)
                ),
                _ => self.leaf(G::Item),
            },
        }
    }

    fn paren(&mut self, g: G, depth: u32) -> String {
        let e = self.expr(g, depth - 1);
        format!("({e})")
    }
}

/// A random JSON context that fits [`CONTEXT`].
fn context(rng: &mut Rng) -> serde_json::Value {
    let int = |r: &mut Rng| -> serde_json::Value {
        match r.below(8) {
            0 => json!(i64::MAX),
            1 => json!(i64::MIN),
            2 => json!(0),
            _ => json!(r.below(21) as i64 - 10),
        }
    };
    let double = |r: &mut Rng| -> serde_json::Value {
        match r.below(8) {
            0 => json!(1e300),
            1 => json!(-0.0),
            2 => json!(0.5),
            _ => json!((r.below(4001) as f64 - 2000.0) / 4.0),
        }
    };
    let string = |r: &mut Rng| -> serde_json::Value {
        json!(*r.pick(&[
            "", "a", "ab", "ba", "travel", "12", "é中", "A b", "-3", "x1"
        ]))
    };
    let list = |r: &mut Rng, f: &dyn Fn(&mut Rng) -> serde_json::Value| -> serde_json::Value {
        let n = r.below(4);
        serde_json::Value::Array((0..n).map(|_| f(r)).collect())
    };
    let mut ctx = serde_json::Map::new();
    ctx.insert("b".into(), json!(rng.chance(2)));
    ctx.insert("i".into(), int(rng));
    ctx.insert("j".into(), int(rng));
    ctx.insert("u".into(), json!(*rng.pick(&[0u64, 3, u64::MAX, 10])));
    ctx.insert("d".into(), double(rng));
    ctx.insert("e".into(), double(rng));
    ctx.insert("s".into(), string(rng));
    ctx.insert("t".into(), string(rng));
    ctx.insert(
        "ts".into(),
        json!(*rng.pick(&[
            "2024-01-01T00:00:00Z",
            "2023-06-15T12:30:45.25+08:00",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ])),
    );
    ctx.insert(
        "du".into(),
        json!(*rng.pick(&["0s", "1h", "-30m", "1.5s", "87600h"])),
    );
    ctx.insert("li".into(), list(rng, &int));
    ctx.insert("ld".into(), list(rng, &double));
    ctx.insert("ls".into(), list(rng, &string));
    let mut m = serde_json::Map::new();
    for k in ["a", "b", "c"] {
        if rng.chance(2) {
            m.insert(k.into(), int(rng));
        }
    }
    ctx.insert("m".into(), serde_json::Value::Object(m));
    let mut o = serde_json::Map::new();
    o.insert("x".into(), int(rng));
    o.insert("name".into(), string(rng));
    if rng.chance(2) {
        o.insert("opt".into(), double(rng));
    }
    ctx.insert("o".into(), serde_json::Value::Object(o));
    let item = |r: &mut Rng| -> serde_json::Value {
        let mut it = serde_json::Map::new();
        it.insert("amount".into(), double(r));
        it.insert(
            "category".into(),
            json!(*r.pick(&["travel", "meal", "gift"])),
        );
        if r.chance(2) {
            it.insert("note".into(), string(r));
        }
        serde_json::Value::Object(it)
    };
    ctx.insert("items".into(), list(rng, &item));
    if rng.chance(2) {
        ctx.insert("ob".into(), string(rng));
    }
    if rng.chance(2) {
        let mut om = serde_json::Map::new();
        for k in ["a", "é中"] {
            if rng.chance(2) {
                om.insert(k.into(), int(rng));
            }
        }
        ctx.insert("om".into(), serde_json::Value::Object(om));
    }
    serde_json::Value::Object(ctx)
}

/// The same value: same type, same contents (maps in any order, NaN equal to NaN).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        }
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| same(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.iter().any(|(k2, v2)| same(k, k2) && same(v, v2)))
        }
        _ => a.type_name() == b.type_name() && a.cel_equals(b),
    }
}

/// The kind of a run-time error: the variant, and for CEL errors the operation's.
fn kind(e: &RunError) -> String {
    match e {
        RunError::Op(op) => format!("{:?}", std::mem::discriminant(op)),
        other => format!("{:?}", std::mem::discriminant(other)),
    }
}

fn agree(a: &Result<Value, RunError>, b: &Result<Value, RunError>) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => same(x, y),
        (Err(x), Err(y)) => kind(x) == kind(y) && x.to_string() == y.to_string(),
        _ => false,
    }
}

/// Does the checker's type fit what the generator meant (`dyn` where the checker
/// cannot know better, e.g. an empty list)?
fn fits(want: &Type, got: &Type) -> bool {
    match (want, got) {
        (Type::Dyn, _) | (_, Type::Dyn) => true,
        (Type::List(a), Type::List(b)) => fits(a, b),
        (Type::Map(k1, v1), Type::Map(k2, v2)) => fits(k1, k2) && fits(v1, v2),
        _ => want == got,
    }
}

pub static DIRECT: AtomicUsize = AtomicUsize::new(0);
pub static ERRORS: AtomicUsize = AtomicUsize::new(0);
pub static CASES: AtomicUsize = AtomicUsize::new(0);
pub static LIMITS: AtomicUsize = AtomicUsize::new(0);
/// Evaluations that ran out of their budget (on both paths: they agree).
pub static SPENT: AtomicUsize = AtomicUsize::new(0);
/// Generated expressions that check refuses because a literal argument always fails.
pub static REFUSED: AtomicUsize = AtomicUsize::new(0);
/// Generated expressions that check refuses for a part that fails whenever it is
/// evaluated (`flowc::expr::failing-part`) while the whole may not.
pub static PARTS: AtomicUsize = AtomicUsize::new(0);

/// Contexts per expression.
pub const CONTEXTS: usize = 4;

pub fn run_value_case(seed: u64, g: G) -> Outcome {
    let f = flow_for(seed);
    let mut gn = Gen {
        rng: Rng(seed),
        locals: Vec::new(),
        fresh: 0,
    };
    let depth = 1 + gn.rng.below(4) as u32;
    let text = gn.expr(g, depth);
    let (expr, ty, always_fails) = match check_expr(
        &ExprSource::detached(&text),
        &f.vars().env(),
        f.sandbox().limits(),
    ) {
        Ok(c) => (c.expr, c.ty, false),
        // the check proves that a constant part always fails (`duration("bad")`,
        // `uint("-3")`, decision 110): the expression still runs on both paths (typed
        // without that proof), and must fail under every context when the whole does
        // (`always-fails`); a part that fails whenever it is evaluated
        // (`failing-part`, `b || duration("bad") > d`) says nothing of the whole, which
        // only runs on both paths
        Err(e)
            if e.iter().all(|x| {
                matches!(
                    x,
                    ExprError::AlwaysFails { .. } | ExprError::FailingPart { .. }
                )
            }) =>
        {
            let whole = e.iter().any(|x| matches!(x, ExprError::AlwaysFails { .. }));
            if whole {
                REFUSED.fetch_add(1, Ordering::Relaxed);
            } else {
                PARTS.fetch_add(1, Ordering::Relaxed);
            }
            let mut tree = parse(&text).map_err(|e| format!("{e:?}"))?;
            let env = f.vars().env();
            let mut checker = Checker::new(&env);
            let ty = checker.check(&mut tree);
            ensure!(checker.errors.is_empty(), "`{text}`: {:?}", checker.errors);
            (tree, ty, whole)
        }
        Err(e) => {
            return Err(format!("`{text}` does not type-check: {e:?}"));
        }
    };
    let checked = Checked { expr, ty };
    ensure!(
        fits(&g.cel(), &checked.ty),
        "`{text}`: checker says {}, generated as {:?}",
        checked.ty,
        g
    );
    let patterns = flowc::expr::Patterns::new();
    let generated = codegen::generate(&checked.expr, f.vars(), &patterns);
    let program = f
        .sandbox()
        .compile(&generated.source, &generated.constants)
        .map_err(|e| format!("`{text}` does not compile: {e}"))?;
    let direct = Some(Direct::lower(
        &checked.expr,
        f.vars(),
        f.sandbox().limits(),
        &patterns,
    ));
    if direct.is_some() {
        DIRECT.fetch_add(1, Ordering::Relaxed);
    }
    CASES.fetch_add(1, Ordering::Relaxed);
    for _ in 0..CONTEXTS {
        let ctx = context(&mut gn.rng);
        let (_, mut b): (_, Bindings) = flowc::runtime::context::bind(f, &ctx)
            .map_err(|e| format!("context refused: {e}: {ctx}"))?;
        let sandboxed = f.sandbox().eval(&program, &mut b);
        if sandboxed.is_err() {
            ERRORS.fetch_add(1, Ordering::Relaxed);
        }
        if matches!(sandboxed, Err(RunError::Limit(_))) {
            LIMITS.fetch_add(1, Ordering::Relaxed);
        }
        if sandboxed.as_ref().err() == Some(&RunError::budget(f.sandbox().limits().max_operations))
        {
            SPENT.fetch_add(1, Ordering::Relaxed);
        }
        ensure!(
            !always_fails || sandboxed.is_err(),
            "`{text}` on {ctx}: the check says it always fails, it gave {sandboxed:?}"
        );
        if let Some(direct) = &direct {
            let d = direct.eval_value(b.slots());
            ensure!(
                agree(&d, &sandboxed),
                "`{text}` on {ctx}: direct {d:?}, sandboxed {sandboxed:?}"
            );
        }
    }
    Ok(())
}

pub fn run_condition_case(seed: u64) -> Outcome {
    let f = flow_for(seed);
    let mut gn = Gen {
        rng: Rng(seed),
        locals: Vec::new(),
        fresh: 0,
    };
    let depth = 1 + gn.rng.below(4) as u32;
    let text = gn.expr(G::Bool, depth);
    let cond = match f.compile_condition("gen", &text) {
        Ok(c) => c,
        // a constant condition that fails whatever the context, or one with a part that
        // fails whenever it is evaluated, is refused by check (`run_value_case` runs
        // such expressions on both paths)
        Err(d)
            if d.iter().all(|x| {
                x.code() == "flowc::expr::always-fails" || x.code() == "flowc::expr::failing-part"
            }) =>
        {
            return Ok(());
        }
        Err(d) => {
            return Err(format!(
                "`{text}` does not compile: {:?}",
                d.iter()
                    .map(|x| format!("{} {}", x.code(), x.message()))
                    .collect::<Vec<_>>()
            ));
        }
    };
    for _ in 0..CONTEXTS {
        let ctx = context(&mut gn.rng);
        let (_, mut b) = flowc::runtime::context::bind(f, &ctx)
            .map_err(|e| format!("context refused: {e}: {ctx}"))?;
        let x = cond.eval(f.sandbox(), &mut b).map(Value::Bool);
        let y = cond.eval_sandboxed(f.sandbox(), &mut b).map(Value::Bool);
        ensure!(
            agree(&x, &y),
            "`{text}` on {ctx}: eval {x:?}, eval_sandboxed {y:?}"
        );
    }
    Ok(())
}

/// A context of the generator's shape whose strings, bytes, lists and maps are huge:
/// every string over a KB (an enum field keeps its values: they are only so many),
/// every list and map 16 elements. Whatever reads or builds them by size is charged
/// many units on both paths.
fn huge_context(rng: &mut Rng) -> serde_json::Value {
    let long = |r: &mut Rng| -> serde_json::Value {
        let base = *r.pick(&["", "a", "ab", "travel", "é中", "-3"]);
        json!(format!("{base}{}", "x".repeat(1024 + r.below(64))))
    };
    fn grow(v: &mut serde_json::Value, long: &dyn Fn(&mut Rng) -> serde_json::Value, r: &mut Rng) {
        match v {
            serde_json::Value::String(_) => *v = long(r),
            serde_json::Value::Array(items) => {
                let seed = items.first().cloned();
                if let Some(first) = seed {
                    while items.len() < 16 {
                        items.push(first.clone());
                    }
                }
                for x in items.iter_mut() {
                    grow(x, long, r);
                }
            }
            serde_json::Value::Object(fields) => {
                for (k, x) in fields.iter_mut() {
                    if k != "category" {
                        grow(x, long, r);
                    }
                }
            }
            _ => {}
        }
    }
    let mut ctx = context(rng);
    if let serde_json::Value::Object(fields) = &mut ctx {
        for (k, v) in fields.iter_mut() {
            match k.as_str() {
                // timestamps and durations are written as strings: kept
                "ts" | "du" => {}
                "m" => {
                    if let serde_json::Value::Object(m) = v {
                        for n in 0..16 {
                            m.insert(format!("k{n}{}", "y".repeat(1024)), json!(n));
                        }
                    }
                }
                _ => grow(v, &long, rng),
            }
        }
        for k in ["li", "ld", "ls", "items"] {
            if let Some(serde_json::Value::Array(items)) = fields.get_mut(k)
                && items.is_empty()
            {
                let mut fresh = context(rng);
                if let Some(v) = fresh.get_mut(k) {
                    grow(v, &long, rng);
                    *items = v.as_array().cloned().unwrap_or_default();
                }
            }
        }
    }
    ctx
}

/// Issue 11 (one definition of the size charges): an expression none of whose nodes
/// the cost model says is charged by size (`expr::may_hit_limit`, from `ir::Charge`)
/// runs within a budget of nothing on both paths, on contexts whose strings and
/// collections are huge; a node kind that is charged by size at run time while the
/// static side says it is not fails here.
pub fn run_unsized_case(seed: u64, g: G) -> Outcome {
    let f = budgeted(0);
    ensure!(
        f.sandbox().limits().max_operations == 0,
        "the budgeted flow has a budget of nothing"
    );
    let mut gn = Gen {
        rng: Rng(seed),
        locals: Vec::new(),
        fresh: 0,
    };
    let depth = 1 + gn.rng.below(4) as u32;
    let text = gn.expr(g, depth);
    let Ok(c) = check_expr(
        &ExprSource::detached(&text),
        &f.vars().env(),
        f.sandbox().limits(),
    ) else {
        return Ok(());
    };
    if flowc::expr::may_hit_limit(&c.expr) {
        return Ok(());
    }
    UNSIZED.fetch_add(1, Ordering::Relaxed);
    let patterns = flowc::expr::Patterns::new();
    let generated = codegen::generate(&c.expr, f.vars(), &patterns);
    let program = f
        .sandbox()
        .compile(&generated.source, &generated.constants)
        .map_err(|e| format!("`{text}` does not compile: {e}"))?;
    let direct = Direct::lower(&c.expr, f.vars(), f.sandbox().limits(), &patterns);
    let condition = if g == G::Bool {
        f.compile_condition("gen", &text).ok()
    } else {
        None
    };
    let spent = RunError::budget(0);
    for _ in 0..2 {
        let ctx = huge_context(&mut gn.rng);
        let (_, mut b): (_, Bindings) =
            flowc::runtime::context::bind(f, &ctx).map_err(|e| format!("context refused: {e}"))?;
        let sandboxed = f.sandbox().eval(&program, &mut b);
        let d = direct.eval_value(b.slots());
        ensure!(
            sandboxed.as_ref().err() != Some(&spent) && d.as_ref().err() != Some(&spent),
            "`{text}` is charged by size at run time (direct {d:?}, sandboxed {sandboxed:?}) but no node of it is by `may_hit_limit`"
        );
        if let Some(cond) = &condition {
            let x = cond.eval(f.sandbox(), &mut b);
            let y = cond.eval_sandboxed(f.sandbox(), &mut b);
            ensure!(
                x.as_ref().err() != Some(&spent) && y.as_ref().err() != Some(&spent),
                "condition `{text}` is charged by size at run time (eval {x:?}, sandboxed {y:?}) but no node of it is by `may_hit_limit`"
            );
        }
    }
    Ok(())
}

/// Generated expressions no node of which is charged by size.
pub static UNSIZED: AtomicUsize = AtomicUsize::new(0);
