//! Every diagnostic code flowc emits, declared once (like ruff's `codes.rs`).
//!
//! Each stage's error enum names its code in its `#[diagnostic(code(..))]`; this table
//! says what each code means and why it matters, and points at the bad fixture that
//! produces it (`tests/fixtures/bad/<stage>.<name>.yaml`) together with the edits that
//! fix it. `flowc rule CODE` prints the entry; tests check that every code emitted
//! anywhere is in the table, that each fixture still produces its code and that the
//! fixed example no longer does, so the examples stay true.

use std::fmt;

/// A worked example of a code, taken from its bad fixture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Example {
    /// No flow file shows it (run-time codes, or a fixture that cannot be printed).
    None,
    /// The bad fixture, without a fixed version (the fix is to remove what it shows).
    Bad {
        /// The fixture's text.
        source: &'static str,
    },
    /// The bad fixture and the edits that fix it.
    Fixed {
        /// The fixture's text.
        source: &'static str,
        /// Text replacements (first occurrence of each, in order) that fix it.
        edits: &'static [(&'static str, &'static str)],
    },
}

impl Example {
    /// The bad flow, when there is one.
    #[must_use]
    pub fn bad(&self) -> Option<&'static str> {
        match self {
            Example::None => None,
            Example::Bad { source } | Example::Fixed { source, .. } => Some(source),
        }
    }

    /// The fixed flow, when the table knows the fix.
    #[must_use]
    pub fn fixed(&self) -> Option<String> {
        let Example::Fixed { source, edits } = self else {
            return None;
        };
        let mut text = (*source).to_owned();
        for (from, to) in *edits {
            text = text.replacen(from, to, 1);
        }
        Some(text)
    }
}

/// What the table says about one code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeInfo {
    /// The code.
    pub code: Code,
    /// One line: what is wrong.
    pub summary: &'static str,
    /// Why it matters and how to fix it.
    pub explanation: &'static str,
    /// The example from the fixtures.
    pub example: Example,
}

/// The bad fixture of a code, embedded so that `flowc rule` shows the real file.
macro_rules! fixture {
    ($stage:literal, $name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/bad/",
            $stage,
            ".",
            $name,
            ".yaml"
        ))
    };
}

macro_rules! example {
    (none, $stage:literal, $name:literal) => {
        Example::None
    };
    (bad, $stage:literal, $name:literal) => {
        Example::Bad {
            source: fixture!($stage, $name),
        }
    };
    (fix, $stage:literal, $name:literal, $( ($from:literal, $to:literal) ),+) => {
        Example::Fixed {
            source: fixture!($stage, $name),
            edits: &[$(($from, $to)),+],
        }
    };
}

macro_rules! codes {
    ($(
        $variant:ident = ($stage:literal, $name:literal):
            $summary:literal,
            $explanation:literal,
            $kind:ident $( [ $( ($from:literal, $to:literal) ),+ ] )?;
    )+) => {
        /// A diagnostic code (`flowc::<stage>::<name>`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $(
                #[doc = $summary]
                $variant,
            )+
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),+];

            /// The full code, e.g. `flowc::graph::unknown-step`.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => concat!("flowc::", $stage, "::", $name),)+
                }
            }

            /// The stage that reports it (`load`, `schema`, `graph`, `runtime`, ...).
            #[must_use]
            pub fn stage(self) -> &'static str {
                match self {
                    $(Code::$variant => $stage,)+
                }
            }

            /// The name of its bad fixture (`graph.unknown-step`), whether or not one exists.
            #[must_use]
            pub fn fixture_name(self) -> &'static str {
                match self {
                    $(Code::$variant => concat!($stage, ".", $name),)+
                }
            }

            /// The table's entry.
            #[must_use]
            pub fn info(self) -> CodeInfo {
                match self {
                    $(Code::$variant => CodeInfo {
                        code: self,
                        summary: $summary,
                        explanation: $explanation,
                        example: example!($kind, $stage, $name $(, $(($from, $to)),+)?),
                    },)+
                }
            }
        }
    };
}

impl Code {
    /// The command that reports this code on its bad example saved as `example.yaml`
    /// (and its companion as `companion.yaml`, [`Code::companion`]). `flowc check`
    /// skips a file that is not a flow, so an empty file is shown with `flowc graph`,
    /// which loads the file it is given.
    #[must_use]
    pub fn command(self) -> &'static str {
        match self {
            Code::LoadEmptyDocument => "flowc graph example.yaml",
            Code::CheckDuplicateFlowId => "flowc check example.yaml companion.yaml",
            _ => "flowc check example.yaml",
        }
    }

    /// The second file of an example about files checked together.
    #[must_use]
    pub fn companion(self) -> Option<&'static str> {
        match self {
            Code::CheckDuplicateFlowId => Some(include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/bad/companions/check.duplicate-flow-id.yaml"
            ))),
            _ => None,
        }
    }

    /// Every code whose name (the part after the stage) is `name`: `unknown-step` is
    /// both `graph::unknown-step` and `runtime::unknown-step`.
    #[must_use]
    pub fn named(name: &str) -> Vec<Code> {
        let name = name.trim();
        Code::ALL
            .iter()
            .copied()
            .filter(|c| c.as_str().rsplit("::").next() == Some(name))
            .collect()
    }

    /// Looks a code up by its full name (`flowc::graph::unknown-step`), without the
    /// `flowc::` prefix, or in fixture form (`graph.unknown-step`).
    #[must_use]
    pub fn parse(text: &str) -> Option<Code> {
        let text = text.trim();
        let text = text.strip_prefix("flowc::").unwrap_or(text);
        let exact = Code::ALL.iter().copied().find(|c| {
            let full = c.as_str();
            full.strip_prefix("flowc::") == Some(text) || c.fixture_name() == text
        });
        // the name alone (`constant-condition`) when one stage has it
        exact.or_else(|| {
            let mut named = Code::ALL
                .iter()
                .copied()
                .filter(|c| c.as_str().rsplit("::").next() == Some(text));
            match (named.next(), named.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        })
    }

    /// True for codes about events, versions and directories (no flow file shows them).
    #[must_use]
    pub fn is_run_time(self) -> bool {
        matches!(
            self.stage(),
            "runtime" | "registry" | "store" | "source" | "io"
        )
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

codes! {
    // ------------------------------------------------------------------ load
    LoadYamlSyntax = ("load", "yaml-syntax"):
        "the file is not valid YAML",
        "The YAML parser stopped at the marked position: an unclosed bracket or quote, a \
         wrong indentation, or a tab in indentation (YAML allows only spaces there). \
         Nothing after a syntax error can be read, so fix it first.",
                fix [
            ("kind: [ApprovalFlow", "kind: ApprovalFlow"),
            ("id: x", "id: x\nsteps:\n  - { id: boss, type: approval, assignees: { role: manager } }")
        ];
    LoadDuplicateKey = ("load", "duplicate-key"):
        "the same key twice in one mapping",
        "YAML parsers disagree about which of two equal keys wins (most keep the last \
         silently), so a duplicate usually hides a mistake. Remove one of them.",
        fix [("    type: approval\n    type: approval\n", "    type: approval\n")];
    LoadTooDeep = ("load", "too-deep"):
        "the document nests more deeply than the loader allows",
        "Deep nesting is a sign of a generated or hostile file; the bound keeps the \
         loader's stack and time small. Flows never need more than a few levels.",
        fix [(
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
            "\n  - { id: boss, type: approval, assignees: { role: manager } }"
        )];
    LoadAliasBudget = ("load", "alias-budget"):
        "anchors and aliases expand to more nodes than the loader allows",
        "Each alias (`*name`) is a copy of its anchor, so a few lines can expand to \
         billions of nodes (a \"billion laughs\" file). The budget counts every \
         expansion; use fewer aliases.",
        fix [
            ("a: &a [x, x, x, x, x, x, x, x, x, x]\n", "id: x\nsteps:\n  - &boss { id: boss, type: approval, assignees: { role: manager } }\n"),
            ("b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n", ""),
            ("c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n", ""),
            ("d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n", ""),
            ("e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n", ""),
            ("f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n", ""),
            ("g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n", "")
        ];
    LoadFileTooLarge = ("load", "file-too-large"):
        "the file is larger than the loader accepts",
        "A flow file is configuration a person reads; the bound keeps a wrong file (a \
         log, a dump) from being loaded. Split a very large flow into several flows.",
        none;
    LoadMultipleDocuments = ("load", "multiple-documents"):
        "more than one YAML document (`---`) in one file",
        "One file holds one flow, so that a file name identifies a flow in diagnostics, \
         in the directory source and in pre-commit. Move the second document to a file \
         of its own.",
        fix [("---\napiVersion: flowc/v1\n", "")];
    LoadEmptyDocument = ("load", "empty-document"):
        "the file is empty",
        "An empty `.yaml` file named as a flow is almost always an unfinished file. A \
         flow starts with `apiVersion: flowc/v1` and `kind: ApprovalFlow`.",
        fix [("", "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: x\nsteps:\n  - { id: boss, type: approval, assignees: { role: manager } }\n")];
    LoadComplexKey = ("load", "complex-key"):
        "a mapping key that is a list or a mapping",
        "Flow keys are plain strings (camelCase); a complex key (`? [a, b]`) cannot be \
         a flow key and cannot be represented in JSON.",
                fix [(
            "? [a, b]\n: value",
            "kind: ApprovalFlow\nid: x\nsteps:\n  - { id: boss, type: approval, assignees: { role: manager } }"
        )];
    LoadNotUtf8 = ("load", "not-utf8"):
        "the file is not UTF-8",
        "Flow files are UTF-8 (YAML 1.2 and JSON require it). Save the file as UTF-8; \
         editors call it \"UTF-8\" or \"UTF-8 without BOM\".",
        none;
    // ---------------------------------------------------------------- schema
    SchemaRequired = ("schema", "required"):
        "a required key is missing",
        "The flow format requires some keys (`id` and `type` on every step, `assignees` \
         on an approval, `to` on a notify, `service` on a service task). The error points \
         at the step that lacks the key; every step lacking one is reported.",
        fix [("  - id: manager\n    type: approval", "  - id: manager\n    type: approval\n    assignees: { role: manager }")];
    SchemaUnknownKey = ("schema", "unknown-key"):
        "a key the flow format does not have",
        "An unknown key is usually a typo of a real one (`asignees`, `skipCondtion`), \
         and a typo would silently change what the flow does. The help names the closest \
         key or lists the keys allowed there.",
        fix [("    asignee: bob\n", "")];
    SchemaTypeMismatch = ("schema", "type-mismatch"):
        "a value of the wrong kind (a list where a string belongs, ...)",
        "Each key takes one kind of value: a string, a number, `true`/`false`, a list \
         or a mapping. The help shows an example of the accepted form.",
        fix [("allowAddSigner: [yes]", "allowAddSigner: true")];
    SchemaInvalidValue = ("schema", "invalid-value"):
        "a value outside the fixed set of a key",
        "Keys such as `type`, `mode`, `hitPolicy`, `join` and `outcome` take one of a \
         fixed set of words; the help suggests the closest one.",
        fix [("mode: sometimes", "mode: any")];
    SchemaPattern = ("schema", "pattern"):
        "a value that does not have the required form",
        "Ids are lowercase words joined by `-`, durations are a whole number and a unit \
         (`30s`, `15m`, `48h`, `7d`), field names are identifiers. The help says which \
         form applies.",
        fix [("timeout: 2 days", "timeout: 2d")];
    SchemaConstraint = ("schema", "constraint"):
        "a value of the right kind that breaks a limit (empty, too many, too large)",
        "For example assignees name exactly one of `role`, `user`, `users` or `expr`, \
         `users` and `enum` list at least one entry, and `retry.max` is at most 100.",
        fix [("max: 1000", "max: 3")];
    // ----------------------------------------------------------------- model
    ModelUnknownType = ("model", "unknown-type"):
        "a context field with a type flowc does not know",
        "Context types are bool, int, uint, double, string, timestamp, duration, \
         list<T>, map<string, T> and object (with `fields`). Every condition is \
         type-checked against them.",
        fix [
            ("amount: dubble", "amount: double"),
            ("lines: list<object>", "lines: { type: list, items: { type: object, fields: { amount: double } } }"),
            ("tags: list<strng>", "tags: list<string>")
        ];
    ModelMapKey = ("model", "map-key"):
        "a map whose keys are not strings",
        "Instance contexts are JSON, and JSON object keys are strings, so a context map \
         is `map<string, T>`.",
        fix [("map<int, string>", "map<string, string>")];
    ModelObjectFields = ("model", "object-fields"):
        "`object` without `fields`, or `fields` on another type",
        "An object's fields are what conditions may select (`applicant.grade`); without \
         them nothing could be checked.",
        fix [("applicant: { type: object }", "applicant: { type: object, fields: { id: string } }")];
    ModelValueType = ("model", "value-type"):
        "a `default` or `enum` value that is not of the declared type",
        "A default that does not fit its field would make every instance that relies on \
         it fail at start; check and runtime use one definition of \"fits\".",
        fix [("default: high", "default: 1"), ("max: \"1000\"", "max: 1000.0")];
    ModelNotInEnum = ("model", "not-in-enum"):
        "a `default` outside its field's `enum`",
        "Every instance that relies on the default would be refused at start: the \
         runtime checks the same `enum`. Pick a default from the list, or add it to the \
         list.",
        fix [("default: JPY", "default: CNY"), ("category: gifts", "category: meal")];
    ModelUndeclaredField = ("model", "undeclared-field"):
        "an object `default` with a key its `fields` do not declare",
        "The runtime refuses undeclared fields, so such a default would fail every \
         start that relies on it. Remove the key or declare it.",
        fix [("grde: 2", "grade: 2")];
    ModelMissingField = ("model", "missing-field"):
        "an object `default` without a required field",
        "A default must itself fit the declaration: give every required field a value, \
         or declare the field `optional: true` or with its own `default`.",
        fix [("default: { grade: 2 }", "default: { id: u1, grade: 2 }")];
    ModelElementType = ("model", "element-type"):
        "an element type written where a declaration is needed (`list<object>`)",
        "A list of objects declares its elements with `type: list` and `items:` (a \
         declaration with `fields`); a map with `type: map` and `values:`.",
        fix [
            ("items: { type: list }", "items: { type: list, items: double }"),
            ("type: \"map<string, int>\", values: int", "type: map, values: int"),
            ("items: { type: string, optional: true }", "items: string")
        ];
    ModelReservedName = ("model", "reserved-name"):
        "a context field named by a CEL reserved word (`if`, `null`, `in`, ...)",
        "CEL reserves `as break const continue else for function if import let loop \
         package namespace return var void while` (cel-go refuses them as identifiers), \
         and `true false null in` are a literal or an operator: a field so named could \
         never be read by a condition.",
        fix [("if: bool", "urgent: bool")];
    // ------------------------------------------------------------------ expr
    ExprSyntax = ("expr", "syntax"):
        "a condition that does not parse",
        "Conditions are a subset of CEL (the Common Expression Language). The help says \
         what the parser expected at the marked position.",
        fix [("amount >> 3", "amount > 3.0")];
    ExprTooDeep = ("expr", "too-deep"):
        "a condition nested deeper than flowc accepts",
        "The parser recurses per level, so an expression may nest at most \
         `Limits::MAX_EXPR_DEPTH` (64) levels of brackets or prefix operators (`!`, `-`) \
         and twice as many binary operators. Split a deep condition over several steps \
         or decision rules, and write a long chain of `||` comparisons as `x in [...]`.",
        fix [("(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((", ""), (")))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))", "")];
    ExprUnknownIdentifier = ("expr", "unknown-identifier"):
        "a name that the flow's `context` does not declare",
        "Every name in a condition must be declared under `context:`, so that the \
         condition can be type-checked and the instance context validated at start. \
         The help names the closest declared field.",
        fix [("amout < 1000.0", "amount < 1000.0")];
    ExprUnknownField = ("expr", "unknown-field"):
        "a field that the object does not declare",
        "Selecting a field the object's `fields` do not declare would fail on every \
         instance; the help names the closest declared field.",
        fix [("applicant.grde > 3", "applicant.id == \"u1\"")];
    ExprTypeMismatch = ("expr", "type-mismatch"):
        "an operator applied to types it does not accept",
        "CEL never converts implicitly: `amount + 1` on a double is an error (write \
         `1.0`), and `==` compares values of one type (`amount == 100.0`). The help says \
         which conversion or literal fits.",
        fix [("amount + 1 > 1000.0", "amount + 1.0 > 1000.0")];
    ExprUnknownFunction = ("expr", "unknown-function"):
        "a function that the condition language does not have",
        "The supported functions are size, has, int, uint, double, string, dyn, \
         timestamp, duration, contains, startsWith, endsWith, matches and the macros \
         all, exists, exists_one, map and filter.",
        fix [("lenght(tags)", "size(tags)")];
    ExprArgumentCount = ("expr", "argument-count"):
        "a function called with the wrong number of arguments",
        "Each function takes a fixed number of arguments; the message says how many.",
        fix [("size(tags, 1)", "size(tags)")];
    ExprInvalidRegex = ("expr", "invalid-regex"):
        "a `matches` pattern that is not a valid regular expression",
        "Patterns use RE2 syntax (linear time, no back-references). A literal pattern \
         is checked when the flow is compiled rather than failing every instance.",
        fix [("matches('(fin')", "matches('^fin')")];
    ExprNotBool = ("expr", "not-bool"):
        "a condition that does not give true or false",
        "`skipCondition` and `when` decide something, so they must be `bool`: compare \
         the value (`amount * 2.0 > 1000.0`).",
        fix [("skipCondition: amount * 2.0", "skipCondition: amount * 2.0 > 1000.0")];
    ExprAssigneeType = ("expr", "assignee-type"):
        "an assignee expression that does not give a user id or a list of them",
        "`expr:` in `assignees`, `escalateTo` or `to` names users, so it must give \
         `string` or `list<string>`.",
        fix [("expr: \"level\"", "expr: \"applicant.id\"")];
    ExprConstantCondition = ("expr", "constant-condition"):
        "a condition that is always true or always false (warning)",
        "A condition that does not depend on the context (`1 < 2`), whose form fixes it \
         (`days > 3 || true`, `dept == dept`) or whose ranges contradict each other \
         (`amount > 100.0 && amount < 50.0`) decides nothing: a skip that always or \
         never happens, a rule that always or never holds.",
        fix [
            ("skipCondition: 1 < 2", "skipCondition: amount < 2.0"),
            ("tags.size() > 5 && size(tags) < 2", "tags.size() > 5 || size(tags) < 2")
        ];
    ExprOutsideEnum = ("expr", "outside-enum"):
        "a string field compared with a value outside its `enum` (warning)",
        "A field with `enum` only ever holds one of the listed values (the runtime \
         refuses any other at start), so `currency == \"JPY\"` with `enum: [CNY, USD]` \
         is always false and `!=` always true: usually a typo or a value that was never \
         added to the enum. The help names the closest listed value.",
        fix [("currency == \"JPY\"", "currency == \"CNY\""), ("\"contracter\"", "\"contractor\"")];
    ExprUnguardedOptional = ("expr", "unguarded-optional"):
        "an optional context field read without a `has()` guard (warning)",
        "A field declared `optional: true` without a `default` may be absent from an \
         instance's context; reading it then fails at run time and the instance raises an \
         incident. Test it first on the same path: `has(grade) && grade > 3`, \
         `!has(grade) || grade > 3`, `has(grade) ? grade > 3 : false`; or give the field a \
         `default`. `has(x)` on a top-level context variable is a flowc extension of CEL.",
        fix [("when: grade > 3", "when: has(grade) && grade > 3"), ("when: applicant.level > 2", "when: has(applicant.level) && applicant.level > 2"), ("i.note == \"urgent\"", "has(i.note) && i.note == \"urgent\"")];
    ExprAlwaysFails = ("expr", "always-fails"):
        "an expression that fails at run time whatever the context",
        "The check evaluates every constant part of an expression (one that reads no \
         context value) once. When one fails (division by zero, overflow, an index or key \
         that is not there, a bad conversion, an unknown time zone, a limit it always runs \
         out of) and nothing absorbs the error (`false && ...` does; a macro's body may \
         never run), the expression fails for every instance: a skip condition would \
         never skip, a decision would raise an incident.",
        fix [("1 / 0 == 1", "amount / 2.0 > 100.0")];
    ExprFailingPart = ("expr", "failing-part"):
        "a part of an expression that fails whenever it is evaluated",
        "The check evaluates every constant part of an expression once, wherever it \
         sits: under `&&` or `||`, in a `?:` branch, in a macro's body. A part that fails \
         at every evaluation of it (an unknown time zone such as `\"Asia/Shanghai\"`, \
         which flowc cannot know without a time-zone database, a timestamp or duration \
         literal that does not parse, a division by a constant zero, an index that is \
         never there) fails every evaluation that reaches it (a skip condition does not \
         skip, a decision raises an incident) while the others pass, so the mistake \
         shows only on some instances. A time-zone name in a `?:` \
         branch given as a zone is one too. Fix the part; the whole expression failing \
         is `always-fails`.",
        fix [("\"Asia/Shanghai\"", "\"+08:00\"")];
    // ----------------------------------------------------------------- graph
    GraphDuplicateStepId = ("graph", "duplicate-step-id"):
        "two steps with the same id",
        "References (`next`, `goto`, `onReject`, ...), the trace and the runtime's \
         events name steps by id, so ids are unique in the whole flow.",
        fix [("assignees: { role: manager }\n  - id: manager", "assignees: { role: manager }\n  - id: director")];
    GraphUnknownStep = ("graph", "unknown-step"):
        "a reference to a step that does not exist",
        "`next`, `goto`, `default`, `onReject`, `onError` and `onTimeout` name steps of \
         this flow; the help names the closest id.",
        fix [("    next: manger\n", "")];
    GraphUnreachableStep = ("graph", "unreachable-step"):
        "a step that no path reaches (warning)",
        "A step after an unconditional `next` or an `end`, that nothing routes to, never \
         runs: usually a forgotten reference. The steps only it leads to are named with \
         it, once.",
        fix [("    next: done\n", "")];
    GraphNoEnd = ("graph", "no-end"):
        "a step from which no end can be reached",
        "An instance that enters such a step can never finish: every path loops. Add an \
         exit (a rule, a `next` or an `end` step). The steps it leads to are named with \
         it, once.",
        fix [("    onReject: loop-b\n    next: loop-b", "    onReject: loop-b\n    next: done")];
    GraphAutomaticCycle = ("graph", "automatic-cycle"):
        "a loop with no human wait (a possible infinite loop)",
        "A loop made only of decisions, service tasks, notifications and skippable \
         steps can run forever without anyone deciding. A loop must pass through an \
         approval that cannot be skipped. The first steps of the loop are named.",
        fix [("        goto: check", "        goto: manager")];
    GraphBranchEscape = ("graph", "branch-escape"):
        "a reference that leaves its parallel branch",
        "A branch ends at its parallel step's join; jumping out of it would leave the \
         join waiting forever. Route inside the branch, or continue after the parallel \
         step.",
        fix [("            next: done\n", "")];
    GraphBranchEntry = ("graph", "branch-entry"):
        "a reference into a parallel branch from outside",
        "Branches start only through their parallel step (which also starts the other \
         branches and the join); route to the parallel step instead.",
        fix [("    next: finance\n", "    next: fork\n")];
    GraphEmptyBranch = ("graph", "empty-branch"):
        "a parallel branch without steps",
        "An empty branch finishes at once, which under `join: any` ends the parallel \
         step before any other branch runs. Add steps or remove the branch.",
        fix [("      - steps: []\n", "      - steps:\n          - id: finance\n            type: approval\n            assignees: { role: finance }\n")];
    GraphNonExhaustiveDecision = ("graph", "non-exhaustive-decision"):
        "a decision without `default` whose rules may all fail (warning)",
        "When no rule holds at run time the instance raises an incident. Add `default:` \
         unless the rules provably cover every value.",
        fix [("        goto: manager\n  - id: manager", "        goto: manager\n    default: manager\n  - id: manager")];
    GraphMissingEscalation = ("graph", "missing-escalation"):
        "`onTimeout: escalate` without `escalateTo`",
        "Escalation hands the task to `escalateTo`; without it nobody would get the task.",
        fix [("onTimeout: escalate", "onTimeout: escalate\n    escalateTo: { role: director }")];
    GraphTimeoutWithoutDuration = ("graph", "timeout-without-duration"):
        "`onTimeout` without `timeout` (warning)",
        "Without a `timeout` the step never times out, so `onTimeout` never applies.",
        fix [("    onTimeout: approve", "    timeout: 48h\n    onTimeout: approve")];
    GraphShadowedRule = ("graph", "shadowed-rule"):
        "a decision rule that an earlier rule always pre-empts (warning)",
        "Under `hitPolicy: first` the first rule that holds wins; a rule that holds only \
         where an earlier one holds is never chosen. Reorder the rules (narrow first) or \
         remove it. A rule that never holds at all is reported as a constant condition.",
        fix [("amount > 1000.0\n        goto: manager\n      - when: amount > 5000.0\n        goto: director", "amount > 5000.0\n        goto: director\n      - when: amount > 1000.0\n        goto: manager")];
    GraphUnreachableRule = ("graph", "unreachable-rule"):
        "a decision rule after a rule that is always true (warning)",
        "Under `hitPolicy: first` the first rule that holds wins; once a rule always \
         holds (`amount > 1000.0 || true`), no later rule and not the `default` is ever \
         chosen. Fix the always-true condition, or make its target the `default`.",
        fix [("amount > 1000.0 || true", "amount > 1000.0")];
    GraphOverlappingRules = ("graph", "overlapping-rules"):
        "two rules that can hold together under `hitPolicy: unique`",
        "Under `unique` more than one rule holding at run time is an incident; make the \
         ranges disjoint or use `hitPolicy: first`.",
        fix [("amount >= 1000.0", "amount >= 5000.0")];
    GraphDecisionNotAnalysed = ("graph", "decision-not-analysed"):
        "two decision rules the analysis could not decide together (warning)",
        "The decision analysis tries every combination of the regions of the fields two \
         rules read; past 4096 combinations, or once the decision has spent its work \
         budget (`Limits::MAX_DECISION_WORK`), it says so instead of guessing: overlaps \
         and shadowed rules among those rules are not known. Compare fewer fields per \
         rule, or split the decision.",
        fix [(" && f8 > 0 && f9 > 0", "")];
    GraphEndInBranch = ("graph", "end-in-branch"):
        "an `end` inside a parallel branch",
        "A branch is closed by its join; an `end` there would skip the other branches \
         and every step after the join. Route after the join instead (a `decision` after \
         the join can go to an `end`).",
        fix [("          - id: done\n            type: end\n            outcome: approved\n", "")];
    GraphBlankAssignee = ("graph", "blank-assignee"):
        "a user or role name of only white space or invisible characters",
        "A blank name asks no one: every visit of the step would stop with an incident.",
        fix [("users: [wang, \" \"]", "users: [wang, li]")];
    GraphPaddedAssignee = ("graph", "padded-assignee"):
        "a user or role name with white space before or after it",
        "`\"li \"` is not the user `li`: a name differing from another only by what cannot \
         be seen is refused, in the flow and in an assignee expression's value alike.",
        fix [("users: [wang, \"li \"]", "users: [wang, li]")];
    GraphDuplicateAssignee = ("graph", "duplicate-assignee"):
        "the same user twice in an assignee list (warning)",
        "One user is one assignee: the second mention changes nothing, and usually a \
         different user was meant.",
        fix [("[wang, li, wang]", "[wang, li, zhao]")];
    GraphSingleWithSeveralUsers = ("graph", "single-with-several-users"):
        "`mode: single` over several users (warning)",
        "The first of them to decide decides, which is `mode: any`; say `any`, or name \
         one user.",
        fix [("mode: single", "mode: any")];
    // --------------------------------------------------------------- runtime
    RuntimeContextNotObject = ("runtime", "context-not-object"):
        "an instance context that is not a JSON object",
        "The context is the flow's declared input: an object with one entry per field.",
        none;
    RuntimeMissingField = ("runtime", "missing-field"):
        "an instance context without a required field",
        "Fields without `optional: true` or a `default` must be given when an instance \
         starts; no instance is created otherwise.",
        none;
    RuntimeWrongType = ("runtime", "wrong-type"):
        "a context value of the wrong type",
        "Each context value must fit its declared type; check and runtime use the same \
         definition.",
        none;
    RuntimeNotAllowed = ("runtime", "not-allowed"):
        "a context value outside the field's `enum`",
        "A field with `enum` accepts only the listed values.",
        none;
    RuntimeUnknownField = ("runtime", "unknown-field"):
        "a context field the flow does not declare",
        "Undeclared fields are refused (usually a typo); the help names the closest \
         declared field.",
        none;
    RuntimeFinished = ("runtime", "finished"):
        "an event for an instance that has finished",
        "A finished instance (approved, rejected, cancelled or with an incident) takes \
         no more events.",
        none;
    RuntimeUnknownStep = ("runtime", "unknown-step"):
        "an event naming a step the flow does not have",
        "Events name steps by id; the id must exist in the version the instance runs on.",
        none;
    RuntimeNotPending = ("runtime", "not-pending"):
        "an event for a step that is not waiting for it",
        "Answers are accepted only from what is live: a task, timer or service call \
         that was withdrawn is refused.",
        none;
    RuntimeNotAssignee = ("runtime", "not-assignee"):
        "a decision by someone who is not an assignee",
        "Only the step's assignees (or added signers) may approve or reject it.",
        none;
    RuntimeNotYourTurn = ("runtime", "not-your-turn"):
        "a decision out of turn under `mode: sequence`",
        "Under `sequence` the assignees decide one after another in the listed order.",
        none;
    RuntimeStale = ("runtime", "stale"):
        "an answer to a task, timer or call that is no longer live",
        "Late, repeated and out-of-order answers are refused and change nothing; the \
         error says what was answered and why it is gone (decided, fired, withdrawn, \
         escalated).",
        none;
    RuntimeNotDue = ("runtime", "not-due"):
        "a timeout delivered before its timer's `dueAt`",
        "Timers are due at an absolute time on the events' clock; an early timeout is \
         refused.",
        none;
    RuntimeUnknownId = ("runtime", "unknown-id"):
        "an answer naming a task, timer or call the instance never issued",
        "Answer with the id from the effect that asked (`create-task`, `start-timer`, \
         `call-service`).",
        none;
    RuntimeIdReused = ("runtime", "id-reused"):
        "a delivery id already applied to a different event",
        "A redelivery repeats the same event under the same id and is a no-op; two \
         different events under one id would lose one of them, so the second is \
         refused.",
        none;
    RuntimeEmptyName = ("runtime", "empty-name"):
        "a blank delivery id, user or signer",
        "Ids and names identify who acted and which message was applied; a blank one \
         identifies nothing.",
        none;
    RuntimeTimeOutOfRange = ("runtime", "time-out-of-range"):
        "an event time beyond 2^53 - 1 seconds",
        "`at` is seconds on the host's clock; timers count from it, so it must leave \
         room for their due times.",
        none;
    RuntimeUnsupportedFormat = ("runtime", "unsupported-format"):
        "a saved instance state of a format this release does not read",
        "Saved states carry a format number; restore with a release that reads it.",
        none;
    RuntimeAddSignerNotAllowed = ("runtime", "add-signer-not-allowed"):
        "adding a signer where the step does not allow it",
        "Only steps with `allowAddSigner: true` take add-signer events.",
        none;
    RuntimeDuplicateSigner = ("runtime", "duplicate-signer"):
        "adding a signer who is already an assignee",
        "An assignee is listed once; adding them again would count their decision twice.",
        none;
    RuntimeTimeBackwards = ("runtime", "time-backwards"):
        "an event earlier than the instance's last event",
        "Events are applied in time order; the clock of an instance never goes back.",
        none;
    RuntimeVersionMismatch = ("runtime", "version-mismatch"):
        "restoring an instance onto another flow version",
        "An instance stays pinned to the version it started on; restore it onto that \
         exact version.",
        none;
    RuntimeCorruptState = ("runtime", "corrupt-state"):
        "a persisted instance state that no sequence of events could produce",
        "Restore refuses inconsistent states rather than running them.",
        none;
    // -------------------------------------------------------------- registry
    RegistryUnknownFlow = ("registry", "unknown-flow"):
        "a flow id the registry does not hold",
        "Publish the flow first, or check the id.",
        none;
    RegistryUnknownVersion = ("registry", "unknown-version"):
        "a version the registry does not keep",
        "The registry keeps recent, active, canary and pinned versions; older ones are \
         dropped by retention.",
        none;
    RegistryRetired = ("registry", "retired"):
        "a flow that is retired",
        "A retired flow takes no new instances; running instances finish on their version.",
        none;
    RegistryCanaryState = ("registry", "canary-state"):
        "a canary operation that does not fit the flow's state",
        "Promote or abort only a running canary; start one only when none runs.",
        none;
    RegistryCanaryShare = ("registry", "canary-share"):
        "a canary share outside 0 to 100 percent",
        "The share of new instances that go to the candidate is a percentage.",
        none;
    RegistryCompile = ("registry", "compile"):
        "a candidate or its selector that does not compile",
        "Publishing compiles first; a flow with errors leaves the active version untouched.",
        none;
    RegistryRevisionTaken = ("registry", "revision-taken"):
        "a revision that already names other content",
        "A revision names one content for ever; the source must give a new one.",
        none;
    RegistryNoStore = ("registry", "no-store"):
        "an operation that needs a version store on a registry without one",
        "Build the registry with `Registry::with_store`.",
        none;
    RegistryHashMismatch = ("registry", "hash-mismatch"):
        "a stored version whose content hash differs from the one asked for",
        "The hash covers the flowc release: a store written by another release cannot \
         be loaded by this one's hash.",
        none;
    RegistryStoredInvalid = ("registry", "stored-invalid"):
        "a stored version that does not compile",
        "The store holds only versions that compiled when published; this one was \
         edited or written by another release.",
        none;
    StoreIo = ("store", "io"):
        "the version store could not be read or written",
        "The message names the file and the operating system's error.",
        none;
    StoreCorrupt = ("store", "corrupt"):
        "a version store file that is not what flowc wrote",
        "Records are checked (shape, name, size, checksum); the file named was edited \
         or torn.",
        none;
    StoreFormat = ("store", "format"):
        "a version store of another format",
        "The store's `flowc-store.json` names a format this release does not read.",
        none;
    StoreInvalidKey = ("store", "invalid-key"):
        "a flow id, hash or holder name that cannot be a store key",
        "Keys become file names: they follow the flow-id pattern, 16 hex digits, or a \
         bounded holder name.",
        none;
    StoreTooLarge = ("store", "too-large"):
        "a stored file over its size limit",
        "Reads are bounded; a larger file was not written by flowc.",
        none;
    StoreRevisionTaken = ("store", "revision-taken"):
        "a revision already recorded for other content",
        "Records are never overwritten: a revision names one content for ever.",
        none;
    StoreNotStored = ("store", "not-stored"):
        "a hold on a version whose source is not in the store",
        "Publish it first; a concurrent prune may have removed it, so retry.",
        none;
    StoreEtcd = ("store", "etcd"):
        "etcd refused an operation or the connection options",
        "The message carries the whole cause chain in words (TLS, authentication, a \
         refused request); check the TLS files and the user etcd expects.",
        none;
    StoreEtcdUnreachable = ("store", "etcd-unreachable"):
        "etcd could not be reached: nothing listens at the endpoints, the connection \
         broke, or no answer came in time",
        "The message names the endpoints and what failed; check that etcd runs there \
         and the `--etcd` option or `FLOWC_ETCD`. The commands exit with 2.",
        none;
    StoreEtcdCorrupt = ("store", "etcd-corrupt"):
        "an etcd key whose value flowc never writes (a history entry or hold put by hand)",
        "A corrupt history entry is skipped with a warning naming its key (`history` \
         shows it as a corrupt entry); `etcdctl del KEY` removes it.",
        none;
    SourceEtcdConflict = ("source", "etcd-conflict"):
        "a publish or rollback refused because the flow changed since it was read",
        "Writes are compare-and-swap on the key's mod revision; both revisions are \
         named. Read the current version (`flowc history`) and publish again with \
         `--expect-revision`.",
        none;
    SourceEtcdUnknownRevision = ("source", "etcd-unknown-revision"):
        "a rollback to a revision with no stored version",
        "`flowc history` lists the revisions that can be rolled back to.",
        none;
    SourceEtcdDeletedRevision = ("source", "etcd-deleted-revision"):
        "a rollback to the revision at which the flow's key was deleted",
        "A deletion holds no content; the help lists the revisions that can be rolled \
         back to (`flowc history` shows the deletion and the versions).",
        none;
    SourceEtcdCorruptRevision = ("source", "etcd-corrupt-revision"):
        "a rollback to a revision whose stored history entry is corrupt",
        "The history key at that revision holds no entry flowc writes (put by hand); the \
         message names the key. Roll back to another revision, or `etcdctl del KEY`.",
        none;
    SourceEtcdOutcomeUnknown = ("source", "etcd-outcome-unknown"):
        "a write whose answer was lost and that could not be read back",
        "etcd may have applied it: `flowc history` tells. Publishing again with the same \
         `--expect-revision` is safe: it is refused if the first write landed.",
        none;
    SourceEtcdSetup = ("source", "etcd-setup"):
        "a connection etcd refuses for good: TLS files, credentials or the endpoint's scheme",
        "the message says what to change: the CA or client certificate (`--cacert`, `--cert`, \
         `--key`), `--user NAME:PASSWORD`, or `http://` versus `https://`. The watcher stops \
         (exit 2) instead of retrying what cannot succeed.",
        none;
    SourceEtcdTooLarge = ("source", "etcd-too-large"):
        "a flow too large to publish in one etcd request",
        "A publish writes the YAML twice (flow key and history entry) in one \
         transaction; etcd takes 1.5 MiB by default (`--max-request-bytes`). Nothing is \
         written; the command exits with 1.",
        none;
    SourceEtcdFlowKey = ("source", "etcd-flow-key"):
        "a key under the flows prefix that does not name a flow",
        "Keys are `<prefix>/<tenant>/flows/<flow-id>`; the watcher ignores others.",
        none;
    SourceEtcdKeyMismatch = ("source", "etcd-key-mismatch"):
        "a flow stored under another flow's key",
        "Put a flow under the key named by its id, as `flowc publish` does.",
        none;
    SourceEtcdSnapshot = ("source", "etcd-snapshot"):
        "the local snapshot directory could not be read or written",
        "Give each tenant its own snapshot directory, writable by the watcher.",
        none;
    CheckDuplicateFlowId = ("check", "duplicate-flow-id"):
        "two files checked together define the same flow id",
        "A registry or a directory source holds one flow per id and would refuse one of \
         them.",
        fix [("id: fixture", "id: fixture-two")];
    ExprInternal = ("expr", "internal"):
        "an internal error: a bug in flowc",
        "A valid expression that flowc failed to compile; please report it with the \
         expression.",
        none;
    // ---------------------------------------------------------------- source
    SourceUnreadable = ("source", "unreadable"):
        "a file of a watched directory that cannot be read",
        "The directory source reports the file and keeps the flows it holds.",
        none;
    SourceWatch = ("source", "watch"):
        "a directory that cannot be watched",
        "The operating system refused the watch (missing directory, permissions, or the \
         limit of watches).",
        none;
    // -------------------------------------------------------------------- io
    IoRead = ("io", "read"):
        "a path that cannot be read",
        "A file or directory named on the command line does not exist or cannot be \
         read. `flowc check` reports it (in JSON as an entry) and exits 2.",
        none;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_in_every_spelling() {
        assert_eq!(
            Code::parse("flowc::graph::unknown-step"),
            Some(Code::GraphUnknownStep)
        );
        assert_eq!(
            Code::parse("graph::unknown-step"),
            Some(Code::GraphUnknownStep)
        );
        assert_eq!(
            Code::parse("graph.unknown-step"),
            Some(Code::GraphUnknownStep)
        );
        assert_eq!(Code::parse("graph::nothing"), None);
        // the name alone, when one stage has it; ambiguous names are not guessed
        assert_eq!(
            Code::parse("constant-condition"),
            Some(Code::ExprConstantCondition)
        );
        assert_eq!(Code::parse("revision-taken"), None);
        for c in Code::ALL {
            assert_eq!(Code::parse(c.as_str()), Some(*c));
        }
    }

    #[test]
    fn fixed_examples_apply_every_edit() {
        for c in Code::ALL {
            let info = c.info();
            if let (Some(bad), Some(fixed)) = (info.example.bad(), info.example.fixed()) {
                assert_ne!(bad, fixed, "{c}: an edit did not apply");
                if let Example::Fixed { edits, .. } = info.example {
                    for (from, _) in edits {
                        assert!(bad.contains(from), "{c}: `{from}` is not in the fixture");
                    }
                }
            }
        }
    }
}
