//! `flowc diff OLD NEW`: the semantic diff of two versions of a flow.

use std::path::Path;

use super::{DiffFormat, EXIT_FAILURE};

pub fn run(old: &Path, new: &Path, format: DiffFormat) -> u8 {
    let (old, new) = match (super::check::load_one(old), super::check::load_one(new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(a), Err(b)) => return a.max(b),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let d = flowc::diff::diff(old.flow(), new.flow());
    match format {
        DiffFormat::Human => out!("{}", d.to_text()),
        DiffFormat::Json => match serde_json::to_string_pretty(&d) {
            Ok(s) => outln!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_FAILURE;
            }
        },
    }
    0
}
