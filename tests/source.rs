//! The directory source: scan, republish, broken edits, deletes, conflicts; and the real
//! file-system watcher (notify) end to end.
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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use flowc::registry::{Action, Registry};
use flowc::source::{DirSource, SourceEvent};
use serde_json::json;

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("flowc-source-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn flow(id: &str, role: &str) -> String {
    format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: {id}\nsteps:\n  - id: a\n    type: approval\n    assignees: {{ role: {role} }}\n"
    )
}

const BROKEN: &str = "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: one\nsteps:\n  - id: a\n    type: approval\n    assignees: { role: r }\n    next: nowhere\n";

/// A short description of an event, for exact assertions.
fn describe(e: &SourceEvent, root: &Path) -> String {
    let rel = |p: &Path| p.strip_prefix(root).unwrap().display().to_string();
    match e {
        SourceEvent::Published { path, version } => {
            format!(
                "published {}@{} {}",
                version.flow,
                version.revision,
                rel(path)
            )
        }
        SourceEvent::Unchanged { path, version } => {
            format!(
                "unchanged {}@{} {}",
                version.flow,
                version.revision,
                rel(path)
            )
        }
        SourceEvent::Rejected {
            path,
            diagnostics,
            kept,
            ..
        } => format!(
            "rejected {} [{}] kept {}",
            rel(path),
            diagnostics
                .iter()
                .map(|d| d.code())
                .collect::<Vec<_>>()
                .join(","),
            kept.as_ref().map_or(0, |v| v.revision)
        ),
        SourceEvent::Retired { path, flow } => format!("retired {flow} {}", rel(path)),
        SourceEvent::Conflict {
            path,
            flow,
            holder,
            kept,
        } => format!(
            "conflict {flow} {} held by {} kept {}",
            rel(path),
            rel(holder),
            kept.as_ref().map_or_else(
                || "none".to_owned(),
                |v| format!("{}@{}", v.flow, v.revision)
            )
        ),
        other => format!("{other:?}"),
    }
}

#[test]
fn scan_and_sync() {
    let dir = tempdir("sync");
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::write(dir.join("one.yaml"), flow("one", "r1")).unwrap();
    std::fs::write(dir.join("nested/two.yml"), flow("two", "r2")).unwrap();
    std::fs::write(dir.join("one.test.yaml"), "flow: one.yaml\nscenarios: []\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "not a flow").unwrap();
    let reg = Arc::new(Registry::default());
    let src = DirSource::new(&dir, Arc::clone(&reg));
    let d = |events: Vec<SourceEvent>| -> Vec<String> {
        events.iter().map(|e| describe(e, &dir)).collect()
    };
    assert_eq!(
        d(src.scan().unwrap()),
        ["published two@1 nested/two.yml", "published one@1 one.yaml"]
    );
    // a running instance on one@1
    let (inst, _) = reg.start("one", "k", json!({}), 0).unwrap();
    // an edit republishes; the same content again changes nothing
    std::fs::write(dir.join("one.yaml"), flow("one", "r9")).unwrap();
    let one = dir.join("one.yaml");
    assert_eq!(
        d(src.sync(&one).into_iter().collect()),
        ["published one@2 one.yaml"]
    );
    assert_eq!(
        d(src.sync(&one).into_iter().collect()),
        ["unchanged one@2 one.yaml"]
    );
    // a broken edit keeps the last good version active
    std::fs::write(&one, BROKEN).unwrap();
    assert_eq!(
        d(src.sync(&one).into_iter().collect()),
        ["rejected one.yaml [flowc::graph::unknown-step] kept 2"]
    );
    assert_eq!(reg.active("one").unwrap().version().revision, 2);
    // a second file with the same flow id is refused
    std::fs::write(dir.join("copy.yaml"), flow("two", "x")).unwrap();
    assert_eq!(
        d(src.scan().unwrap()),
        [
            "conflict two copy.yaml held by nested/two.yml kept none",
            "unchanged two@1 nested/two.yml",
            "rejected one.yaml [flowc::graph::unknown-step] kept 2",
        ]
    );
    // when the holder goes, the waiting file takes the flow over (no retirement between)
    let two = dir.join("nested/two.yml");
    std::fs::remove_file(&two).unwrap();
    assert_eq!(d(src.sync(&two)), ["published two@2 copy.yaml"]);
    assert_eq!(reg.active("two").unwrap().version().revision, 2);
    // a deleted file retires its flow for new starts only
    std::fs::remove_file(&one).unwrap();
    assert_eq!(
        d(src.sync(&one).into_iter().collect()),
        ["retired one one.yaml"]
    );
    assert!(reg.active("one").is_none());
    assert!(reg.start("one", "k", json!({}), 0).is_err());
    assert_eq!(inst.flow().version().revision, 1);
    assert!(
        reg.get(inst.flow().version()).is_some(),
        "a live instance's version is kept"
    );
    let actions: Vec<Action> = reg
        .history("one")
        .unwrap()
        .into_iter()
        .map(|h| h.action)
        .collect();
    assert_eq!(
        actions,
        [Action::Published, Action::Published, Action::Retired]
    );
    // the file comes back: published again
    std::fs::write(&one, flow("one", "r1")).unwrap();
    assert_eq!(
        d(src.sync(&one).into_iter().collect()),
        ["published one@3 one.yaml"]
    );
    // a non-flow path is ignored
    assert!(src.sync(&dir.join("notes.txt")).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A batch taken as a whole: a file removed and another created with its flow (a rename
/// seen as remove + create) moves the flow, with no retirement and no conflict, in
/// either order of the names; a batch where the flow really goes retires it.
#[test]
fn a_batch_moves_a_renamed_flow_without_retiring_it() {
    let dir = tempdir("batch");
    std::fs::write(dir.join("m.yaml"), flow("one", "r1")).unwrap();
    let reg = Arc::new(Registry::default());
    let src = DirSource::new(&dir, Arc::clone(&reg));
    let d = |events: Vec<SourceEvent>| -> Vec<String> {
        events.iter().map(|e| describe(e, &dir)).collect()
    };
    assert_eq!(d(src.scan().unwrap()), ["published one@1 m.yaml"]);
    for (from, to) in [("m.yaml", "z.yaml"), ("z.yaml", "a.yaml")] {
        std::fs::remove_file(dir.join(from)).unwrap();
        std::fs::write(dir.join(to), flow("one", "r1")).unwrap();
        assert_eq!(
            d(src.sync_batch(&[dir.join(from), dir.join(to)])),
            [format!("published one@1 {to}")],
            "{from} -> {to}"
        );
        assert!(reg.active("one").is_some());
    }
    // a rename that also edits the flow publishes the new version, still no retirement
    std::fs::remove_file(dir.join("a.yaml")).unwrap();
    std::fs::write(dir.join("b.yaml"), flow("one", "r2")).unwrap();
    assert_eq!(
        d(src.sync_batch(&[dir.join("a.yaml"), dir.join("b.yaml")])),
        ["published one@2 b.yaml"]
    );
    // gone for good: retired
    std::fs::remove_file(dir.join("b.yaml")).unwrap();
    assert_eq!(
        d(src.sync_batch(&[dir.join("b.yaml")])),
        ["retired one b.yaml"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_store_names_the_directory_versions_across_restarts() {
    // the failure, without a store: a file that comes back with its first content gets
    // a new revision, and a new process numbers from 1 again (see `scan_and_sync`)
    let dir = tempdir("store");
    let store_root = dir.join(".flowc/versions");
    let one = dir.join("one.yaml");
    std::fs::write(&one, flow("one", "r1")).unwrap();
    let open = || {
        let store = flowc::store::DirStore::open(&store_root).unwrap();
        let reg = Arc::new(Registry::with_store(
            flowc::compile::Options::default(),
            Arc::new(store),
        ));
        (DirSource::new(&dir, Arc::clone(&reg)), reg)
    };
    let d = |events: Vec<SourceEvent>| -> Vec<String> {
        events.iter().map(|e| describe(e, &dir)).collect()
    };
    let (src, reg) = open();
    assert_eq!(d(src.scan().unwrap()), ["published one@1 one.yaml"]);
    let (inst, _) = reg.start("one", "k", json!({}), 0).unwrap();
    let saved = serde_json::to_string(inst.state()).unwrap();
    std::fs::write(&one, flow("one", "r2")).unwrap();
    assert_eq!(d(src.sync(&one)), ["published one@2 one.yaml"]);
    // the first content again keeps its revision
    std::fs::write(&one, flow("one", "r1")).unwrap();
    assert_eq!(d(src.sync(&one)), ["published one@1 one.yaml"]);
    std::fs::write(&one, flow("one", "r3")).unwrap();
    assert_eq!(d(src.sync(&one)), ["published one@3 one.yaml"]);
    // the store lives in a hidden directory: never scanned as flows
    assert_eq!(d(src.scan().unwrap()), ["unchanged one@3 one.yaml"]);
    drop((src, reg, inst));
    // a new process on the same directory and store: the same names
    let (src, reg) = open();
    assert_eq!(d(src.scan().unwrap()), ["published one@3 one.yaml"]);
    std::fs::write(&one, flow("one", "r2")).unwrap();
    assert_eq!(d(src.sync(&one)), ["published one@2 one.yaml"]);
    std::fs::write(&one, flow("one", "r4")).unwrap();
    assert_eq!(d(src.sync(&one)), ["published one@4 one.yaml"]);
    // and the instance saved on one@1 restores by its hash
    let inst = reg.restore(serde_json::from_str(&saved).unwrap()).unwrap();
    assert_eq!(inst.flow().version().revision, 1);
    let records: Vec<u64> = reg
        .store()
        .unwrap()
        .list("one")
        .unwrap()
        .iter()
        .map(|r| r.revision)
        .collect();
    assert_eq!(records, [1, 2, 3, 4]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failing_store_keeps_the_last_good_version() {
    use miette::Diagnostic;
    let dir = tempdir("store-fails");
    let store_root = dir.join(".flowc/versions");
    let one = dir.join("one.yaml");
    std::fs::write(&one, flow("one", "r1")).unwrap();
    let store = flowc::store::DirStore::open(&store_root).unwrap();
    let reg = Arc::new(Registry::with_store(
        flowc::compile::Options::default(),
        Arc::new(store),
    ));
    let src = DirSource::new(&dir, Arc::clone(&reg));
    assert_eq!(src.scan().unwrap().len(), 1);
    // the store's flow directory becomes a file: the next version cannot be stored
    std::fs::remove_dir_all(store_root.join("flows")).unwrap();
    std::fs::write(store_root.join("flows"), b"").unwrap();
    std::fs::write(&one, flow("one", "r2")).unwrap();
    let events = src.sync(&one);
    let [SourceEvent::StoreFailed { path, error, kept }] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(path, &one);
    assert_eq!(error.code().unwrap().to_string(), "flowc::store::io");
    assert_eq!(kept.as_ref().unwrap().revision, 1);
    assert_eq!(reg.active("one").unwrap().version().revision, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits for the next event that matches, up to 20 s.
fn expect(rx: &mpsc::Receiver<String>, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(e) if e == want => return,
            Ok(e) => seen.push(e),
            Err(_) => break,
        }
    }
    panic!("no `{want}` within 20 s; saw {seen:?}");
}

#[test]
fn watcher_republishes_changes() {
    let dir = tempdir("watch");
    std::fs::write(dir.join("one.yaml"), flow("one", "r1")).unwrap();
    let reg = Arc::new(Registry::default());
    let src = Arc::new(DirSource::new(&dir, Arc::clone(&reg)));
    src.scan().unwrap();
    let (tx, rx) = mpsc::channel();
    let root = dir.clone();
    let _watch = src
        .watch(Duration::from_millis(50), move |e| {
            let _ = tx.send(describe(&e, &root));
        })
        .unwrap();
    // files in hidden directories are not flows of this source (as in `scan`)
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    std::fs::write(dir.join(".git/hidden.yaml"), flow("hidden", "r")).unwrap();
    std::fs::write(dir.join("one.yaml"), flow("one", "r2")).unwrap();
    expect(&rx, "published one@2 one.yaml");
    assert!(reg.active("hidden").is_none());
    std::fs::write(dir.join("one.yaml"), BROKEN).unwrap();
    expect(&rx, "rejected one.yaml [flowc::graph::unknown-step] kept 2");
    assert_eq!(reg.active("one").unwrap().version().revision, 2);
    // a directory moved in brings its flows
    let outside = std::env::temp_dir().join(format!("flowc-source-out-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&outside);
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("three.yaml"), flow("three", "r3")).unwrap();
    std::fs::rename(&outside, dir.join("sub")).unwrap();
    expect(&rx, "published three@1 sub/three.yaml");
    // and removing it retires them
    std::fs::remove_dir_all(dir.join("sub")).unwrap();
    expect(&rx, "retired three sub/three.yaml");
    std::fs::remove_file(dir.join("one.yaml")).unwrap();
    expect(&rx, "retired one one.yaml");
    assert!(reg.active("one").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn source_errors_have_their_codes() {
    use miette::Diagnostic;
    let missing = std::env::temp_dir().join("flowc-source-does-not-exist");
    let src = Arc::new(DirSource::new(&missing, Arc::new(Registry::default())));
    let e = src.scan().unwrap_err();
    assert_eq!(e.code().unwrap().to_string(), "flowc::source::unreadable");
    let e = src.watch(Duration::from_millis(10), |_| {}).unwrap_err();
    assert_eq!(e.code().unwrap().to_string(), "flowc::source::watch");
}

/// Two files that swap their flow ids in one batch each publish the other's flow: the
/// batch is judged as a whole, so neither is refused for an id the other held before it.
/// Later edits publish normally (the source is not stuck).
#[test]
fn two_files_swapping_ids_in_one_batch_publish_both() {
    let dir = tempdir("swap");
    std::fs::write(dir.join("a.yaml"), flow("xx", "ra")).unwrap();
    std::fs::write(dir.join("b.yaml"), flow("yy", "rb")).unwrap();
    let reg = Arc::new(Registry::default());
    let src = DirSource::new(&dir, Arc::clone(&reg));
    let d = |events: Vec<SourceEvent>| -> Vec<String> {
        events.iter().map(|e| describe(e, &dir)).collect()
    };
    assert_eq!(
        d(src.scan().unwrap()),
        ["published xx@1 a.yaml", "published yy@1 b.yaml"]
    );
    std::fs::write(dir.join("a.yaml"), flow("yy", "rb")).unwrap();
    std::fs::write(dir.join("b.yaml"), flow("xx", "ra")).unwrap();
    // the same contents under the other names: the active versions stay
    assert_eq!(
        d(src.sync_batch(&[dir.join("a.yaml"), dir.join("b.yaml")])),
        ["published yy@1 a.yaml", "published xx@1 b.yaml"]
    );
    // an edit of each now publishes from its new file
    std::fs::write(dir.join("a.yaml"), flow("yy", "new-a")).unwrap();
    assert_eq!(d(src.sync(&dir.join("a.yaml"))), ["published yy@2 a.yaml"]);
    std::fs::write(dir.join("b.yaml"), flow("xx", "new-b")).unwrap();
    assert_eq!(d(src.sync(&dir.join("b.yaml"))), ["published xx@2 b.yaml"]);
    assert_eq!(reg.active("xx").unwrap().version().revision, 2);
    // a swap seen one file at a time is a real conflict until the second file changes
    std::fs::write(dir.join("a.yaml"), flow("xx", "c")).unwrap();
    assert_eq!(
        d(src.sync(&dir.join("a.yaml"))),
        ["conflict xx a.yaml held by b.yaml kept yy@2"]
    );
    assert_eq!(reg.active("yy").unwrap().version().revision, 2);
    std::fs::write(dir.join("b.yaml"), flow("yy", "c")).unwrap();
    assert_eq!(
        d(src.sync(&dir.join("b.yaml"))),
        ["published yy@3 b.yaml", "published xx@3 a.yaml"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An edit refused because another file holds the new id keeps the file's previous
/// flow active (like a broken edit; the refusal names the version kept) and never
/// retires it; when the holder goes, the file takes the new id over and only then lets
/// its old flow go.
#[test]
fn an_edit_refused_for_a_taken_id_keeps_the_previous_flow() {
    let dir = tempdir("refused-id");
    let a = dir.join("a.yaml");
    let c = dir.join("c.yaml");
    std::fs::write(&a, flow("contract-signing", "ra")).unwrap();
    std::fs::write(&c, flow("purchase-order", "rc")).unwrap();
    let reg = Arc::new(Registry::default());
    let src = DirSource::new(&dir, Arc::clone(&reg));
    let d = |events: Vec<SourceEvent>| -> Vec<String> {
        events.iter().map(|e| describe(e, &dir)).collect()
    };
    assert_eq!(
        d(src.scan().unwrap()),
        [
            "published contract-signing@1 a.yaml",
            "published purchase-order@1 c.yaml"
        ]
    );
    std::fs::write(&a, flow("purchase-order", "ra")).unwrap();
    assert_eq!(
        d(src.sync(&a)),
        ["conflict purchase-order a.yaml held by c.yaml kept contract-signing@1"]
    );
    assert_eq!(
        reg.active("contract-signing").unwrap().version().revision,
        1
    );
    assert_eq!(reg.active("purchase-order").unwrap().version().revision, 1);
    // a rescan changes nothing: the file still holds its old flow and waits for the new
    assert_eq!(
        d(src.scan().unwrap()),
        [
            "conflict purchase-order a.yaml held by c.yaml kept contract-signing@1",
            "unchanged purchase-order@1 c.yaml"
        ]
    );
    // a broken edit declaring the taken id keeps the old flow too
    std::fs::write(&a, BROKEN.replace("id: one", "id: purchase-order")).unwrap();
    assert_eq!(
        d(src.sync(&a)),
        ["rejected a.yaml [flowc::graph::unknown-step] kept 1"]
    );
    assert!(reg.active("contract-signing").is_some());
    // fixed, it still waits; the holder gone, it takes the id over and lets go of its
    // old flow
    std::fs::write(&a, flow("purchase-order", "ra")).unwrap();
    assert_eq!(
        d(src.sync(&a)),
        ["conflict purchase-order a.yaml held by c.yaml kept contract-signing@1"]
    );
    std::fs::remove_file(&c).unwrap();
    assert_eq!(
        d(src.sync(&c)),
        [
            "published purchase-order@2 a.yaml",
            "retired contract-signing a.yaml"
        ]
    );
    assert!(reg.active("contract-signing").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A broken flow file moved or renamed keeps its flow's last good version active (the
/// rejection names it) and never retires the flow; fixed, it publishes from its new name.
#[test]
fn a_broken_file_moved_keeps_its_flow_active() {
    let dir = tempdir("broken-move");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let one = dir.join("one.yaml");
    std::fs::write(&one, flow("one", "r1")).unwrap();
    let reg = Arc::new(Registry::default());
    let src = DirSource::new(&dir, Arc::clone(&reg));
    let d = |events: Vec<SourceEvent>| -> Vec<String> {
        events.iter().map(|e| describe(e, &dir)).collect()
    };
    assert_eq!(d(src.scan().unwrap()), ["published one@1 one.yaml"]);
    std::fs::write(&one, BROKEN).unwrap();
    assert_eq!(
        d(src.sync(&one)),
        ["rejected one.yaml [flowc::graph::unknown-step] kept 1"]
    );
    let moved = dir.join("sub/one.yaml");
    std::fs::rename(&one, &moved).unwrap();
    let events = src.sync_batch(&[one.clone(), moved.clone()]);
    assert_eq!(
        d(events),
        ["rejected sub/one.yaml [flowc::graph::unknown-step] kept 1"]
    );
    assert_eq!(reg.active("one").unwrap().version().revision, 1);
    // the rejection names the flow
    std::fs::write(&moved, BROKEN.replace("nowhere", "elsewhere")).unwrap();
    let events = src.sync(&moved);
    let [
        SourceEvent::Rejected {
            flow: named, kept, ..
        },
    ] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!(named.as_deref(), Some("one"));
    assert_eq!(kept.as_ref().unwrap().revision, 1);
    // renamed again while broken, one event at a time (the old name first): still kept
    let renamed = dir.join("sub/renamed.yaml");
    std::fs::rename(&moved, &renamed).unwrap();
    assert_eq!(
        d(src.sync_batch(&[moved.clone(), renamed.clone()])),
        ["rejected sub/renamed.yaml [flowc::graph::unknown-step] kept 1"]
    );
    // fixed: published from the new name
    std::fs::write(&renamed, flow("one", "r2")).unwrap();
    assert_eq!(d(src.sync(&renamed)), ["published one@2 sub/renamed.yaml"]);
    // deleted: retired
    std::fs::remove_file(&renamed).unwrap();
    assert_eq!(d(src.sync(&renamed)), ["retired one sub/renamed.yaml"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The id a flow file declares is read without compiling (and from a broken file).
#[test]
fn declared_id_reads_the_id_line() {
    use flowc::source::dir::{DeclaredId, declared_id};
    let at = |id: &str, line, column| DeclaredId {
        id: id.to_owned(),
        line,
        column,
    };
    assert_eq!(
        declared_id(flow("one", "r").as_bytes()),
        Some(at("one", 3, 5))
    );
    assert_eq!(
        declared_id(b"kind: ApprovalFlow\nid: \"two\"  # the id\nsteps: [\n"),
        Some(at("two", 2, 5))
    );
    assert_eq!(
        declared_id(b"{apiVersion: flowc/v1, kind: ApprovalFlow, id: three}"),
        Some(at("three", 1, 48))
    );
    assert_eq!(declared_id(b"steps:\n  - id: a\n"), None);
    assert_eq!(declared_id(b"id:\n"), None);
}
