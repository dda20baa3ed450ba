//! `flowc watch DIR`: load a directory of flows into a registry and keep it in step,
//! logging each publish, rejection and retirement (one line each; diagnostics after).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flowc::registry::Registry;
use flowc::source::{DirSource, SourceEvent};

use super::EXIT_FAILURE;

fn log(event: &SourceEvent) {
    match event {
        SourceEvent::Published { path, version } => {
            outln!("published {version} from {}", path.display());
        }
        SourceEvent::Unchanged { path, version } => {
            outln!("unchanged {version} from {}", path.display());
        }
        SourceEvent::Rejected {
            path,
            diagnostics,
            kept,
        } => {
            let kept = kept.as_ref().map_or_else(
                || "no version active".to_owned(),
                |v| format!("{v} stays active"),
            );
            outln!(
                "rejected {}: {} error(s); {kept}",
                path.display(),
                diagnostics.error_count()
            );
            let mut out = String::new();
            for d in diagnostics {
                super::check::render_human(d, &mut out);
            }
            eprint!("{out}");
        }
        SourceEvent::Retired { path, flow } => {
            outln!(
                "retired {flow}: {} is gone (running instances keep their version)",
                path.display()
            );
        }
        SourceEvent::Conflict { path, flow, holder } => {
            outln!(
                "rejected {}: flow `{flow}` is already defined in {}",
                path.display(),
                holder.display()
            );
        }
        SourceEvent::Unreadable { path, message } => {
            outln!("unreadable {}: {message}", path.display());
        }
        _ => outln!("{event:?}"),
    }
}

pub fn run(dir: &Path, debounce_ms: u64) -> u8 {
    let registry = Arc::new(Registry::default());
    let source = Arc::new(DirSource::new(dir, registry));
    match source.scan() {
        Ok(events) => events.iter().for_each(log),
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    }
    let _watch = match source.watch(Duration::from_millis(debounce_ms), |e| log(&e)) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    outln!("watching {}", dir.display());
    loop {
        std::thread::park();
    }
}
