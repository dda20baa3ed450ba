//! `flowc watch DIR`: load a directory of flows into a registry and keep it in step,
//! logging each publish, rejection and retirement (one line each; diagnostics after).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flowc::compile::Options;
use flowc::registry::Registry;
use flowc::source::{DirSource, SourceEvent};
use flowc::store::DirStore;

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
        SourceEvent::StoreFailed { path, error, kept } => {
            let kept = kept.as_ref().map_or_else(
                || "no version active".to_owned(),
                |v| format!("{v} stays active"),
            );
            outln!("unstored {}: {error}; {kept}", show(path));
        }
        SourceEvent::Unreadable { path, message } => {
            outln!("unreadable {}: {message}", show(path));
        }
        _ => outln!("{event:?}"),
    }
}

/// The store `flowc watch DIR` uses unless told otherwise: inside the watched directory
/// (hidden, so never scanned as flows), ignored by git.
fn default_store(dir: &Path) -> Result<PathBuf, std::io::Error> {
    let base = dir.join(".flowc");
    std::fs::create_dir_all(&base)?;
    let ignore = base.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(
            &ignore,
            "# flowc's version store: runtime state, not source\n*\n",
        )?;
    }
    Ok(base.join("versions"))
}

pub fn run(dir: &Path, debounce_ms: u64, store: Option<&Path>, no_store: bool) -> u8 {
    if !dir.is_dir() {
        // before the default store would create it
        eprintln!("error: cannot read `{}`: not a directory", dir.display());
        return EXIT_FAILURE;
    }
    let root = match (no_store, store) {
        (true, _) => None,
        (false, Some(p)) => Some(p.to_path_buf()),
        (false, None) => match default_store(dir) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!(
                    "error: cannot create the version store in `{}`: {e}",
                    dir.display()
                );
                return EXIT_FAILURE;
            }
        },
    };
    let (registry, store_note) = match &root {
        None => (Registry::default(), "versions in memory only".to_owned()),
        Some(root) => match DirStore::open(root) {
            Ok(s) => (
                Registry::with_store(Options::default(), Arc::new(s)),
                format!("versions in {}", root.display()),
            ),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_FAILURE;
            }
        },
    };
    let source = Arc::new(DirSource::new(dir, Arc::new(registry)));
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
    outln!("watching {} ({store_note})", dir.display());
    loop {
        std::thread::park();
    }
}
