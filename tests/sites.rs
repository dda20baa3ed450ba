//! Issue 11 (one definition of a rule): every place both paths charge beyond a node's
//! units that is no row of the overload table is an `overload::Site` (`==`/`!=`, `in`,
//! a map key, an element taken, a literal placing a value, a comprehension step), and
//! each is charged what the one routine, `flowc::expr::site_cost`, gives on its
//! operands. Each site runs on operands of growing size on both paths: the least
//! budget grows by exactly the routine's figure, so a node or native that charged a
//! site by a rule of its own would fail here.
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

mod support {
    pub mod paths;
}

use flowc::expr::overload::Site;
use flowc::expr::{Value, site_cost};
use support::paths::{self, Path, bind, list, map};

const FIELDS: &str = r#"
s: string
t: string
x: int
key: string
l: list<int>
k: list<int>
m: "map<string, int>"
ll: list<list<int>>
"#;

/// A budget every case fits.
const MAX: u64 = 1 << 20;

/// The operand sizes each case runs on (bytes of a string, elements of a list).
const SIZES: [usize; 4] = [0, 100, 2_000, 10_000];

/// The length of the string literal the `==` of a string and a literal compares with.
const LITERAL: usize = 4_000;

fn ints(n: usize) -> Value {
    list((0..i64::try_from(n).unwrap()).map(Value::Int))
}

fn text(n: usize) -> Value {
    Value::string(&"a".repeat(n))
}

/// A site, a condition charging it once, the context of size `n`, and the site's
/// operands in that context.
struct Case {
    site: Site,
    cond: String,
    context: fn(usize) -> Vec<(&'static str, Value)>,
    operands: fn(usize) -> Vec<Value>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            site: Site::Equality,
            cond: "s == t".to_owned(),
            context: |n| vec![("s", text(n)), ("t", text(n))],
            operands: |n| vec![text(n), text(n)],
        },
        Case {
            site: Site::Equality,
            cond: format!("s != \"{}\"", "a".repeat(LITERAL)),
            context: |n| vec![("s", text(n))],
            operands: |n| vec![text(n), text(LITERAL)],
        },
        Case {
            site: Site::Equality,
            cond: "l == k".to_owned(),
            context: |n| vec![("l", ints(n)), ("k", ints(n))],
            operands: |n| vec![ints(n), ints(n)],
        },
        Case {
            site: Site::Membership,
            cond: "x in l".to_owned(),
            context: |n| vec![("x", Value::Int(-1)), ("l", ints(n))],
            operands: |n| vec![Value::Int(-1), ints(n)],
        },
        Case {
            site: Site::Membership,
            cond: "key in m".to_owned(),
            context: |n| {
                vec![
                    ("key", text(n)),
                    ("m", map([("a".repeat(n).as_str(), Value::Int(1))])),
                ]
            },
            operands: |n| vec![text(n), map([("a".repeat(n).as_str(), Value::Int(1))])],
        },
        Case {
            site: Site::Key,
            cond: "m[key] > 0".to_owned(),
            context: |n| {
                vec![
                    ("key", text(n)),
                    ("m", map([("a".repeat(n).as_str(), Value::Int(1))])),
                ]
            },
            operands: |n| vec![text(n)],
        },
        Case {
            site: Site::Take,
            cond: "size(ll[0]) > 0".to_owned(),
            context: |n| vec![("ll", list([ints(n)]))],
            operands: |n| vec![ints(n)],
        },
        Case {
            site: Site::Literal,
            cond: "[l] == ll".to_owned(),
            // lists of different lengths compare nothing
            context: |n| vec![("l", ints(n)), ("ll", list([]))],
            operands: |n| vec![ints(n)],
        },
        Case {
            site: Site::Step,
            cond: "ll.all(e, size(e) > 0)".to_owned(),
            context: |n| vec![("ll", list([ints(n)]))],
            operands: |n| vec![ints(n)],
        },
    ]
}

/// What the routine charges the site on its operands.
fn figure(site: Site, operands: &[Value]) -> u64 {
    let operands: Vec<&Value> = operands.iter().collect();
    site_cost(site, &operands, u64::MAX)
        .unwrap()
        .expect("fits")
        .units
}

#[test]
fn every_site_costs_on_both_paths_what_the_one_routine_says() {
    let at = |units: u64| paths::flow(FIELDS, &paths::budget(units));
    let base = at(MAX);
    for case in cases() {
        let cond = case.cond.as_str();
        let mut costs = Vec::new();
        for n in SIZES {
            let mut b = bind(&base, (case.context)(n));
            let direct = paths::least_budget(at, &mut b, cond, Path::Direct, MAX);
            let sandboxed = paths::least_budget(at, &mut b, cond, Path::Sandbox, MAX);
            assert_eq!(direct, sandboxed, "`{cond}` at size {n}: direct, sandbox");
            costs.push((n, direct, figure(case.site, &(case.operands)(n))));
        }
        let (_, base_cost, base_figure) = costs[0];
        for &(n, cost, fig) in &costs {
            assert_eq!(
                cost - base_cost,
                fig - base_figure,
                "`{cond}` ({:?}) at size {n}: {costs:?}",
                case.site
            );
        }
        // the case is one the size of its operands charges
        let (_, _, top) = costs[SIZES.len() - 1];
        assert!(top > base_figure, "`{cond}`: {costs:?}");
    }
}
