//! `flowc rule CODE`: what a diagnostic code means, why, and a bad and a fixed example
//! taken from the fixtures (like `ruff rule`). `flowc rule --all` lists every code.

use std::fmt::Write as _;

use flowc::codes::{Code, CodeInfo};

use super::EXIT_FAILURE;

/// Accepts any spelling of a code (`run` reports unknown ones with a did-you-mean) and
/// offers every code to the shell completions, in the fixture form (`graph.unknown-step`)
/// because shells split words at `:`.
#[derive(Clone, Copy, Debug)]
pub struct CodeParser;

impl clap::builder::TypedValueParser for CodeParser {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(Code::ALL.iter().map(|c| {
            clap::builder::PossibleValue::new(c.fixture_name()).help(c.info().summary)
        })))
    }
}

/// The Markdown page of one code.
fn page(info: &CodeInfo) -> String {
    let code = info.code;
    let mut s = format!("# {code}\n\n{}.\n\n## Why\n\n", capitalised(info.summary));
    let _ = writeln!(s, "{}", info.explanation);
    if let Some(bad) = info.example.bad() {
        let _ = write!(
            s,
            "\n## Example\n\n`tests/fixtures/bad/{}.yaml`:\n\n```yaml\n{}",
            code.fixture_name(),
            with_newline(bad)
        );
        s.push_str("```\n");
        if let Some(other) = code.companion() {
            let _ = write!(
                s,
                "\nchecked together with `tests/fixtures/bad/companions/{}.yaml`:\n\n```yaml\n{}```\n",
                code.fixture_name(),
                with_newline(other)
            );
        }
        let _ = write!(
            s,
            "\nSaved as `example.yaml`{}, `{}` reports it.\n",
            if code.companion().is_some() {
                " and `companion.yaml`"
            } else {
                ""
            },
            code.command()
        );
    }
    if let Some(fixed) = info.example.fixed() {
        let _ = write!(s, "\n## Fixed\n\n```yaml\n{}```\n", with_newline(&fixed));
    }
    s
}

fn capitalised(text: &str) -> String {
    let mut c = text.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn with_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_owned()
    } else {
        format!("{text}\n")
    }
}

pub fn run(code: Option<&str>, all: bool) -> u8 {
    if all || code.is_none() {
        let width = Code::ALL
            .iter()
            .map(|c| c.as_str().len())
            .max()
            .unwrap_or(0);
        for c in Code::ALL {
            outln!("{:width$}  {}", c.as_str(), c.info().summary);
        }
        return 0;
    }
    let text = code.unwrap_or_default();
    if let Some(c) = Code::parse(text) {
        out!("{}", page(&c.info()));
        0
    } else if let named @ [_, _, ..] = Code::named(text).as_slice() {
        // a name that several stages have: list them rather than guess
        let list: Vec<&str> = named.iter().map(|c| c.as_str()).collect();
        eprintln!(
            "error: `{text}` names {} codes: {}; run `flowc rule` with one of them",
            list.len(),
            list.join(", ")
        );
        EXIT_FAILURE
    } else {
        let names: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        let wanted = if text.starts_with("flowc::") {
            text.to_owned()
        } else {
            format!("flowc::{}", text.replace('.', "::"))
        };
        let hint = flowc::diagnostic::did_you_mean(&wanted, names.iter().copied()).map_or_else(
            || "`flowc rule --all` lists every code".to_owned(),
            |s| format!("did you mean `{s}`?"),
        );
        eprintln!("error: unknown diagnostic code `{text}`: {hint}");
        EXIT_FAILURE
    }
}
