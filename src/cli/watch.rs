//! `flowc watch DIR`: load a directory of flows into a registry and keep it in step,
//! logging each publish, rejection and retirement (one line each; diagnostics after).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flowc::registry::Registry;
use flowc::source::{DirSource, SourceEvent};

use super::EXIT_FAILURE;

/// Shows the source's canonical paths as the user spelt the directory
/// (`flowc watch flows` logs `flows/purchase.yaml`).
struct Names {
    canonical: PathBuf,
    given: PathBuf,
}

impl Names {
    fn show(&self, p: &Path) -> String {
        p.strip_prefix(&self.canonical)
            .map_or_else(|_| p.to_path_buf(), |rel| self.given.join(rel))
            .display()
            .to_string()
    }
}

fn log(names: &Names, event: &SourceEvent) {
    let show = |p: &Path| names.show(p);
    match event {
        SourceEvent::Published { path, version } => {
            outln!("published {version} from {}", show(path));
        }
        SourceEvent::Unchanged { path, version } => {
            outln!("unchanged {version} from {}", show(path));
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
                show(path),
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
                show(path)
            );
        }
        SourceEvent::Conflict { path, flow, holder } => {
            outln!(
                "rejected {}: flow `{flow}` is already defined in {}",
                show(path),
                show(holder)
            );
        }
        SourceEvent::Unreadable { path, message } => {
            outln!("unreadable {}: {message}", show(path));
        }
        _ => outln!("{event:?}"),
    }
}

pub fn run(dir: &Path, debounce_ms: u64) -> u8 {
    let registry = Arc::new(Registry::default());
    let source = Arc::new(DirSource::new(dir, registry));
    let names = Names {
        canonical: source.dir().to_path_buf(),
        given: dir.to_path_buf(),
    };
    match source.scan() {
        Ok(events) => events.iter().for_each(|e| log(&names, e)),
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    }
    let _watch = match source.watch(Duration::from_millis(debounce_ms), move |e| log(&names, &e)) {
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
