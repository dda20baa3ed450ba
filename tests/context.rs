//! Context declarations nested to any depth, and the one definition of "this value fits
//! this type" (`flowc::model::fit`): what `flowc check` passes, the runtime accepts, and
//! what the runtime would refuse, check reports.
#![allow(
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "test and benchmark code: failing loudly is the point"
)]

use std::sync::Arc;

use flowc::compile::{CompiledFlow, Options, compile};
use flowc::diagnostic::Diagnostics;
use flowc::runtime::{ContextError as C, Instance, RuntimeError};
use flowc::span::SourceFile;
use serde_json::json;

const STEPS: &str = "  - id: a\n    type: approval\n    assignees: { role: r }\n";

fn source(context: &str, steps: &str) -> Arc<SourceFile> {
    SourceFile::new(
        "t.yaml",
        format!(
            "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: t\ncontext:\n{context}\nsteps:\n{steps}"
        ),
    )
}

fn flow(context: &str) -> Arc<CompiledFlow> {
    flow_with(context, STEPS)
}

fn flow_with(context: &str, steps: &str) -> Arc<CompiledFlow> {
    match compile(&source(context, steps), &Options::default()) {
        Ok(f) => Arc::new(f),
        Err(d) => panic!("does not compile: {:?}", messages(&d)),
    }
}

fn messages(d: &Diagnostics) -> Vec<String> {
    d.iter()
        .map(|x| format!("{} {:?} {}", x.code(), x.line_col(), x.message()))
        .collect()
}

/// The diagnostics of a context that does not check: (code, line, column, message).
fn check_errors(context: &str) -> Vec<(String, usize, usize, String)> {
    match compile(&source(context, STEPS), &Options::default()) {
        Ok(_) => panic!("compiles"),
        Err(d) => d
            .iter()
            .map(|x| {
                let (l, c) = x.line_col();
                (x.code(), l, c, x.message())
            })
            .collect(),
    }
}

/// Starts with the context borrowed (copied) and handed over (normalised in place): the
/// saved states are byte-identical; returns the normalised context.
fn started(f: &Arc<CompiledFlow>, ctx: serde_json::Value) -> serde_json::Value {
    let saved = |r: Result<(Instance, _), RuntimeError>| match r {
        Ok((i, _)) => serde_json::to_string(i.state()).expect("json"),
        Err(e) => panic!("refused {ctx}: {e}"),
    };
    let borrowed = saved(Instance::start(Arc::clone(f), &ctx, 0));
    let owned = saved(Instance::start(Arc::clone(f), ctx.clone(), 0));
    assert_eq!(borrowed, owned, "{ctx}: borrowed and owned contexts differ");
    match Instance::start(Arc::clone(f), ctx, 0) {
        Ok((i, _)) => i.state().context.to_json(),
        Err(e) => panic!("{e}"),
    }
}

/// The refusal of a context, the same borrowed and handed over.
fn refused(f: &Arc<CompiledFlow>, ctx: serde_json::Value) -> C {
    let error = |r: Result<(Instance, _), RuntimeError>| match r {
        Err(RuntimeError::Context(c)) => c,
        Ok(_) => panic!("accepted {ctx}"),
        Err(e) => panic!("{e}"),
    };
    let borrowed = error(Instance::start(Arc::clone(f), &ctx, 0));
    assert_eq!(
        error(Instance::start(Arc::clone(f), ctx.clone(), 0)),
        borrowed
    );
    borrowed
}

#[test]
fn a_default_inside_an_objects_fields_is_applied_at_start() {
    // issue 9: check passed this, and every start without `probation` failed
    let f = flow(
        "  employee:\n    type: object\n    fields:\n      id: string\n      probation: { type: bool, default: false }\n",
    );
    assert_eq!(
        started(&f, json!({"employee": {"id": "e1"}})),
        json!({"employee": {"id": "e1", "probation": false}})
    );
    // given values win over defaults
    assert_eq!(
        started(&f, json!({"employee": {"id": "e1", "probation": true}})),
        json!({"employee": {"id": "e1", "probation": true}})
    );
}

#[test]
fn an_objects_fields_given_out_of_order_are_kept_in_declaration_order() {
    // the context is copied as given unless normalising changes it: reordering does
    let f =
        flow("  employee:\n    type: object\n    fields:\n      id: string\n      grade: int\n");
    let saved = |ctx: serde_json::Value| {
        let (inst, _) = Instance::start(Arc::clone(&f), &ctx, 0).expect("start");
        let borrowed = serde_json::to_string(&inst.state().context).expect("json");
        // handed over, the context is put in declaration order in place
        let (inst, _) = Instance::start(Arc::clone(&f), ctx, 0).expect("start");
        assert_eq!(
            serde_json::to_string(&inst.state().context).expect("json"),
            borrowed
        );
        borrowed
    };
    assert_eq!(
        saved(json!({"employee": {"grade": 3, "id": "e1"}})),
        r#"{"employee":{"id":"e1","grade":3}}"#
    );
    assert_eq!(
        saved(json!({"employee": {"id": "e1", "grade": 3}})),
        r#"{"employee":{"id":"e1","grade":3}}"#
    );
}

#[test]
fn defaults_apply_at_every_depth_and_inside_defaults() {
    let f = flow(
        "  employee:\n    type: object\n    default: {}\n    fields:\n      probation: { type: bool, default: false }\n      manager:\n        type: object\n        default: { id: m1 }\n        fields:\n          id: string\n          level: { type: int, default: 1 }\n  items:\n    type: list\n    items:\n      type: object\n      fields:\n        amount: double\n        category: { type: string, enum: [travel, meal], default: meal }\n",
    );
    assert_eq!(
        started(
            &f,
            json!({"items": [{"amount": 5}, {"amount": 7.5, "category": "travel"}]})
        ),
        json!({
            "employee": {"probation": false, "manager": {"id": "m1", "level": 1}},
            "items": [
                {"amount": 5, "category": "meal"},
                {"amount": 7.5, "category": "travel"}
            ]
        })
    );
}

#[test]
fn a_default_outside_the_enum_is_a_check_error_and_would_be_refused_at_start() {
    let decl = "  currency: { type: string, enum: [CNY, USD], default: JPY }\n";
    assert_eq!(
        check_errors(decl),
        vec![(
            "flowc::model::not-in-enum".to_owned(),
            5,
            56,
            "default `JPY` is not one of the `enum` values".to_owned()
        )]
    );
    // the runtime refuses the same value with the same definition
    let f = flow("  currency: { type: string, enum: [CNY, USD], default: CNY }\n");
    assert_eq!(
        refused(&f, json!({"currency": "JPY"})),
        C::NotAllowed {
            field: "currency".into(),
            value: "\"JPY\"".into(),
            allowed: "\"CNY\", \"USD\"".into()
        }
    );
    assert_eq!(started(&f, json!({})), json!({"currency": "CNY"}));
}

#[test]
fn an_object_default_with_an_undeclared_key_is_a_check_error() {
    let errs = check_errors(
        "  applicant:\n    type: object\n    default: { id: u1, grde: 2 }\n    fields:\n      id: string\n      grade: { type: int, optional: true }\n",
    );
    assert_eq!(
        errs,
        vec![(
            "flowc::model::undeclared-field".to_owned(),
            7,
            24,
            "default sets `grde`, which the object does not declare".to_owned()
        )]
    );
}

#[test]
fn defaults_of_the_wrong_type_or_shape_are_check_errors() {
    let errs = check_errors(
        "  level: { type: int, default: 1.5 }\n  when: { type: timestamp, default: yesterday }\n  who:\n    type: object\n    default: { grade: 2 }\n    fields:\n      id: string\n      grade: int\n  lines:\n    type: list\n    default: [{ amount: lots }]\n    items: { type: object, fields: { amount: double } }\n",
    );
    let codes: Vec<(&str, usize, usize)> = errs
        .iter()
        .map(|(c, l, col, _)| (c.as_str(), *l, *col))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("flowc::model::value-type", 5, 32),
            ("flowc::model::value-type", 6, 37),
            ("flowc::model::missing-field", 9, 16),
            ("flowc::model::value-type", 15, 25),
        ],
        "{errs:?}"
    );
    assert_eq!(
        errs[3].3,
        "default `lots` at `[0].amount` is not a `double`"
    );
}

#[test]
fn enum_values_must_fit_their_type() {
    let errs = check_errors("  level: { type: int, enum: [1, two, 3] }\n");
    assert_eq!(
        errs,
        vec![(
            "flowc::model::value-type".to_owned(),
            5,
            33,
            "enum value `two` is not a `int`".to_owned()
        )]
    );
}

#[test]
fn nested_values_are_refused_with_their_path() {
    let f = flow(
        "  items:\n    type: list\n    items:\n      type: object\n      fields:\n        amount: double\n        category: { type: string, enum: [travel, meal] }\n  limits: { type: map, values: { type: object, fields: { max: double } }, optional: true }\n",
    );
    assert_eq!(
        refused(
            &f,
            json!({"items": [{"amount": 1, "category": "meal"}, {"amount": "x", "category": "meal"}]})
        ),
        C::WrongType {
            field: "items[1].amount".into(),
            expected: "double".into(),
            got: "a string `\"x\"`".into()
        }
    );
    assert_eq!(
        refused(&f, json!({"items": [{"amount": 1, "category": "gift"}]})),
        C::NotAllowed {
            field: "items[0].category".into(),
            value: "\"gift\"".into(),
            allowed: "\"travel\", \"meal\"".into()
        }
    );
    assert_eq!(
        refused(
            &f,
            json!({"items": [{"amount": 1, "category": "meal", "amout": 2}]})
        ),
        C::Unknown {
            field: "items[0].amout".into(),
            help: "did you mean `amount`?".into()
        }
    );
    assert_eq!(
        refused(&f, json!({"items": [{"category": "meal"}]})),
        C::Missing {
            field: "items[0].amount".into(),
            expected: "double".into()
        }
    );
    assert_eq!(
        refused(&f, json!({"items": [], "limits": {"travel": {}}})),
        C::Missing {
            field: "limits[\"travel\"].max".into(),
            expected: "double".into()
        }
    );
    assert_eq!(
        refused(&f, json!({"items": {"amount": 1}})),
        C::WrongType {
            field: "items".into(),
            expected: "list<object>".into(),
            got: "an object `{\"amount\":1}`".into()
        }
    );
}

/// Every default and enum value of the valid nested-types fixture is accepted at start
/// and filled in at every depth.
#[test]
fn the_nested_types_fixture_starts_with_only_its_required_fields() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/valid/nested-types.yaml"
    );
    let file = SourceFile::new("nested-types.yaml", std::fs::read_to_string(path).unwrap());
    let f = Arc::new(compile(&file, &Options::default()).unwrap());
    assert_eq!(
        started(&f, json!({"amount": 1.0})),
        json!({
            "amount": 1.0,
            "items": [],
            "limits": {"travel": {"max": 5000.0, "currency": "CNY"}},
            "employee": {"probation": false}
        })
    );
}

/// `items.exists(..)`, `items.all(..)` and macros over macros run on both evaluation
/// paths with the same result.
#[test]
fn conditions_over_lists_of_objects_run_on_both_paths() {
    let f = flow(
        "  items:\n    type: list\n    items:\n      type: object\n      fields:\n        amount: double\n        category: { type: string, default: meal }\n        note: { type: string, optional: true }\n",
    );
    let cases: &[(&str, serde_json::Value, bool)] = &[
        (
            "items.exists(i, i.amount > 1000.0)",
            json!([{"amount": 10}, {"amount": 1000.5}]),
            true,
        ),
        (
            "items.exists(i, i.amount > 1000.0)",
            json!([{"amount": 10}]),
            false,
        ),
        (
            "items.all(i, i.category in [\"travel\", \"meal\"])",
            json!([{"amount": 1}, {"amount": 2, "category": "travel"}]),
            true,
        ),
        (
            "items.all(i, i.category in [\"travel\", \"meal\"])",
            json!([{"amount": 1, "category": "gift"}]),
            false,
        ),
        (
            "items.map(i, i.amount).filter(x, x > 10.0).size() > 1",
            json!([{"amount": 11}, {"amount": 5}, {"amount": 12}]),
            true,
        ),
        (
            "items.filter(i, has(i.note)).size() == 1",
            json!([{"amount": 1, "note": "taxi"}, {"amount": 2}]),
            true,
        ),
        (
            "items.exists_one(i, i.category == \"meal\")",
            json!([{"amount": 1}, {"amount": 2, "category": "travel"}]),
            true,
        ),
    ];
    for (text, items, want) in cases {
        let cond = f.compile_condition("c", text).unwrap();
        let (_, mut b) = flowc::runtime::context::bind(&f, json!({ "items": items })).unwrap();
        let direct = cond.eval(f.sandbox(), &mut b);
        let sandboxed = cond.eval_sandboxed(f.sandbox(), &mut b);
        assert_eq!(direct, Ok(*want), "{text} on {items}");
        assert_eq!(sandboxed, Ok(*want), "{text} on {items} (sandboxed)");
    }
}

#[test]
fn a_decision_over_line_items_routes_on_both_paths() {
    let f = flow_with(
        "  items:\n    type: list\n    items: { type: object, fields: { amount: double, category: string } }\n",
        "  - id: route\n    type: decision\n    rules:\n      - when: 'items.exists(i, i.amount > 1000.0)'\n        goto: big\n      - when: 'items.map(i, i.amount).filter(x, x > 10.0).size() > 2'\n        goto: big\n    default: small\n  - id: big\n    type: approval\n    assignees: { role: director }\n  - id: small\n    type: approval\n    assignees: { role: manager }\n",
    );
    let d = f.decision(f.step_index("route").unwrap()).unwrap();
    for (items, want) in [
        (json!([{"amount": 2000, "category": "a"}]), Some(0)),
        (
            json!([{"amount": 20, "category": "a"}, {"amount": 30, "category": "a"}, {"amount": 40, "category": "a"}]),
            Some(1),
        ),
        (json!([{"amount": 20, "category": "a"}]), None),
    ] {
        let (_, mut b) = flowc::runtime::context::bind(&f, json!({ "items": items })).unwrap();
        assert_eq!(d.eval(f.sandbox(), &mut b), Ok(want), "{items}");
        assert_eq!(d.eval_sandboxed(f.sandbox(), &mut b), Ok(want), "{items}");
    }
}

#[test]
fn a_handed_over_context_is_refused_at_the_same_first_misfit_as_a_borrowed_one() {
    // a wrong field before a missing one: the wrong one is reported either way (a
    // context normalised in place still fits its fields in declaration order)
    let f = flow(
        "  a: int
  b: { type: string, default: x }
  c: string
  d: int
",
    );
    assert_eq!(
        refused(&f, json!({"a": "no", "d": 1})),
        C::WrongType {
            field: "a".into(),
            expected: "int".into(),
            got: "a string `\"no\"`".into()
        }
    );
    assert_eq!(
        refused(&f, json!({"d": 1, "a": 1})),
        C::Missing {
            field: "c".into(),
            expected: "string".into()
        }
    );
    assert_eq!(
        started(&f, json!({"d": 1, "c": "y", "a": 1})),
        json!({"a": 1, "b": "x", "c": "y", "d": 1})
    );
}

#[test]
fn keys_in_declaration_order_with_gaps_fit_and_any_key_after_them_is_unknown() {
    // the order check walks the given keys once against the declared fields: a gap
    // (an optional field left out) keeps the order, an undeclared key anywhere does not
    let f = flow("  a: int\n  b: { type: string, optional: true }\n  c: int\n");
    assert_eq!(
        started(&f, json!({"a": 1, "c": 2})),
        json!({"a": 1, "c": 2})
    );
    assert_eq!(
        refused(&f, json!({"a": 1, "c": 2, "zz": 3})),
        C::Unknown {
            field: "zz".into(),
            help: "declared fields: a, b, c".into()
        }
    );
    // more keys than declared fields
    assert_eq!(
        refused(&f, json!({"a": 1, "b": "x", "c": 2, "d": 4})),
        C::Unknown {
            field: "d".into(),
            help: "did you mean `a`?".into()
        }
    );
    assert_eq!(
        refused(&f, json!({"zz": 0, "a": 1})),
        C::Unknown {
            field: "zz".into(),
            help: "declared fields: a, b, c".into()
        }
    );
}

/// A number `int` or `uint` cannot hold is named by the type's range (never echoed as
/// the double it was read as); a fraction is not a whole number.
#[test]
fn numbers_out_of_range_or_not_whole_say_so() {
    let f = flow("  i: { type: int, optional: true }\n  u: { type: uint, optional: true }\n");
    let ctx = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    let wrong = |field: &str, expected: &str, got: &str| C::WrongType {
        field: field.into(),
        expected: expected.into(),
        got: got.into(),
    };
    let cases = [
        (
            r#"{"u": 18446744073709551616}"#,
            wrong(
                "u",
                "uint",
                "a number out of range for `uint` (0 to 2^64-1)",
            ),
        ),
        (
            r#"{"u": -1}"#,
            wrong(
                "u",
                "uint",
                "a negative number, out of range for `uint` (0 to 2^64-1)",
            ),
        ),
        (
            r#"{"u": -1e30}"#,
            wrong(
                "u",
                "uint",
                "a negative number, out of range for `uint` (0 to 2^64-1)",
            ),
        ),
        (
            r#"{"i": -9223372036854775809}"#,
            wrong(
                "i",
                "int",
                "a number out of range for `int` (-2^63 to 2^63-1)",
            ),
        ),
        (
            r#"{"i": 9223372036854775808}"#,
            wrong(
                "i",
                "int",
                "a number out of range for `int` (-2^63 to 2^63-1)",
            ),
        ),
        (
            r#"{"i": 1.5}"#,
            wrong("i", "int", "a number that is not a whole number `1.5`"),
        ),
        (
            r#"{"u": 2.25}"#,
            wrong("u", "uint", "a number that is not a whole number `2.25`"),
        ),
        (r#"{"i": "1"}"#, wrong("i", "int", "a string `\"1\"`")),
    ];
    for (given, want) in cases {
        assert_eq!(refused(&f, ctx(given)), want, "{given}");
    }
    assert_eq!(
        refused(&f, ctx(r#"{"u": 18446744073709551616}"#)).to_string(),
        "context field `u` should be `uint`, found a number out of range for `uint` (0 to 2^64-1)"
    );
    // the bounds themselves fit
    for ok in [
        r#"{"i": -9223372036854775808, "u": 18446744073709551615}"#,
        r#"{"i": 9223372036854775807, "u": 0}"#,
    ] {
        assert!(Instance::start(Arc::clone(&f), ctx(ok), 0).is_ok(), "{ok}");
    }
}

/// A timestamp that names no instant (a day past its month, a leap second, an offset of
/// a day or more) is refused with what is wrong, never rolled over to a later instant.
#[test]
fn invalid_timestamps_are_refused_with_what_is_wrong() {
    let f = flow("  t: timestamp\n");
    let wrong = |got: &str| C::WrongType {
        field: "t".into(),
        expected: "timestamp".into(),
        got: got.into(),
    };
    let cases = [
        (
            "2024-02-30T00:00:00Z",
            "string `\"2024-02-30T00:00:00Z\"`: the day is not in its month",
        ),
        (
            "2023-02-29T00:00:00Z",
            "string `\"2023-02-29T00:00:00Z\"`: the day is not in its month",
        ),
        (
            "2024-01-01T23:59:60Z",
            "string `\"2024-01-01T23:59:60Z\"`: the second is over 59 (there are no leap seconds)",
        ),
        (
            "2024-01-01T24:00:00Z",
            "string `\"2024-01-01T24:00:00Z\"`: the hour is over 23",
        ),
        (
            "2024-01-01T00:00:00+24:00",
            "string `\"2024-01-01T00:00:00+24:00\"`: the offset is not under 24:00",
        ),
        (
            "yesterday",
            "string `\"yesterday\"`: not an RFC 3339 timestamp (`2024-01-31T09:30:00Z`)",
        ),
    ];
    for (given, got) in cases {
        assert_eq!(refused(&f, json!({ "t": given })), wrong(got), "{given}");
    }
    // the last day of February in a leap year, and the largest offset, are fine
    started(&f, json!({"t": "2024-02-29T23:59:59+23:59"}));
}

/// A duration the parser refuses is refused with what is wrong (a unit that is no
/// duration unit, a number with no unit, a value past CEL's range), as a timestamp is;
/// the Greek `μ` (U+03BC) spells microseconds as the micro sign `µ` (U+00B5) does, as in
/// Go's `time.ParseDuration`.
#[test]
fn invalid_durations_are_refused_with_what_is_wrong() {
    let f = flow("  du: duration\n");
    let wrong = |got: &str| C::WrongType {
        field: "du".into(),
        expected: "duration".into(),
        got: got.into(),
    };
    let cases = [
        (
            "1d",
            "string `\"1d\"`: unit `d` is not a duration unit (h, m, s, ms, us, ns); 1 day is 24h",
        ),
        (
            "2w",
            "string `\"2w\"`: unit `w` is not a duration unit (h, m, s, ms, us, ns); 1 week is 168h",
        ),
        (
            "5x",
            "string `\"5x\"`: unit `x` is not a duration unit (h, m, s, ms, us, ns)",
        ),
        (
            "1h30",
            "string `\"1h30\"`: `30` has no unit (h, m, s, ms, us, ns)",
        ),
        (
            "9223372036.854775808s",
            "string `\"9223372036.854775808s\"`: out of range: at most 9223372036.854775807s (about 292 years) either way",
        ),
        (
            "-2562048h",
            "string `\"-2562048h\"`: out of range: at most 9223372036.854775807s (about 292 years) either way",
        ),
        (
            "soon",
            "string `\"soon\"`: not a duration (numbers with units h, m, s, ms, us, ns, e.g. `1h30m` or `1.5s`)",
        ),
    ];
    for (given, got) in cases {
        assert_eq!(refused(&f, json!({ "du": given })), wrong(got), "{given}");
    }
    // the bounds, and microseconds in either spelling, are fine
    for ok in [
        "9223372036.854775807s",
        "-2562047h",
        "1\u{3bc}s",
        "1\u{b5}s",
        "1us",
    ] {
        started(&f, json!({ "du": ok }));
    }
}

/// A name or key of a context that does not fit is quoted by the one rule every
/// message quotes input by (`value::quote`: 64 characters, then `… (N bytes)`), so a
/// start-time refusal stays bounded whatever the context (probe q11e nit 1: a 1 MB
/// field name gave a 1 MB message, a 1 MB map key a 2 MB one).
#[test]
fn a_huge_field_name_or_key_is_quoted_bounded() {
    use miette::Diagnostic as _;
    let f = flow(
        "  m: { type: \"map<string, int>\", default: {} }\n  obj: { type: object, optional: true, fields: { name: string } }\n",
    );
    let huge = |c: char| c.to_string().repeat(1_000_000);
    let cut = |c: char| format!("{}… (1000000 bytes)", c.to_string().repeat(64));
    let shown = |e: &C| {
        let help = e.help().map(|h| h.to_string()).unwrap_or_default();
        (e.to_string(), help)
    };
    // an unknown field at the top
    let mut top = serde_json::Map::new();
    top.insert(huge('k'), json!(1));
    assert_eq!(
        shown(&refused(&f, serde_json::Value::Object(top))),
        (
            format!("context field `{}` is not declared by the flow", cut('k')),
            "declared fields: m, obj".to_owned()
        )
    );
    // a wrong-typed value under a map key: the key in the message and in the help
    let key = cut('k');
    assert_eq!(
        shown(&refused(&f, json!({ "m": { huge('k'): "x" } }))),
        (
            format!("context field `m[\"{key}\"]` should be `int`, found a string `\"x\"`"),
            format!("give `m[\"{key}\"]` a value of type `int`")
        )
    );
    // an unknown field of an object
    assert_eq!(
        shown(&refused(
            &f,
            json!({ "obj": { "name": "a", huge('z'): 1 } })
        )),
        (
            format!(
                "context field `obj.{}` is not declared by the flow",
                cut('z')
            ),
            "declared fields: name".to_owned()
        )
    );
    // a long value is cut by the same rule
    assert_eq!(
        shown(&refused(&f, json!({ "m": { "a": huge('v') } }))).0,
        format!(
            "context field `m[\"a\"]` should be `int`, found a string `\"{}… (1000002 bytes)`",
            "v".repeat(63)
        )
    );
}
