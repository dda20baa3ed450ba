//! The version store: revisions that survive restarts, restore by content hash in a
//! rebuilt registry, holds that retention never deletes, typed errors on corrupt files,
//! atomic writes, several writers on one directory. Each test first shows the failure
//! of a registry without a store (the per-process counter), then the store's answer.
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
use std::sync::atomic::{AtomicUsize, Ordering};

use flowc::compile::{Options, VersionId};
use flowc::registry::{Registry, RegistryError};
use flowc::runtime::{Event, Instance, InstanceState};
use flowc::store::{DirStore, Hold, NewVersion, StoreError, VersionMeta, VersionStore};
use serde_json::json;

/// A fresh, empty directory under the system temp dir (removed on drop).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "flowc-store-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

/// Version `n` of a flow: a manager approval, then (only in odd versions) a finance
/// approval; each version's content differs by its name.
fn source(n: usize) -> Vec<u8> {
    let finance = if n % 2 == 1 {
        "  - id: finance\n    type: approval\n    assignees: { role: finance }\n"
    } else {
        ""
    };
    format!(
        "apiVersion: flowc/v1\nkind: ApprovalFlow\nid: claim\nname: version {n}\ncontext: {{ amount: double }}\nsteps:\n  - id: manager\n    type: approval\n    assignees: {{ role: manager }}\n{finance}"
    )
    .into_bytes()
}

fn approve(step: &str) -> Event {
    serde_json::from_value(json!({"type": "approve", "step": step, "user": "u", "role": step}))
        .unwrap()
}

fn registry(root: &Path) -> Registry {
    Registry::with_store(Options::default(), Arc::new(DirStore::open(root).unwrap()))
}

/// An instance of the current version waiting at `finance`, saved as JSON.
fn saved_at_finance(reg: &Registry, key: &str) -> String {
    let (mut inst, _) = reg
        .start("claim", key, json!({"amount": 500.0}), 0)
        .unwrap();
    inst.apply(&approve("manager"), 1).unwrap();
    assert_eq!(inst.status().label(), "pending");
    serde_json::to_string(inst.state()).unwrap()
}

/// Restores a saved instance in `reg` and finishes it with the finance approval.
fn finish(reg: &Registry, saved: &str) -> Result<Instance, RegistryError> {
    let state: InstanceState = serde_json::from_str(saved).unwrap();
    let mut inst = reg.restore(state)?;
    inst.apply(&approve("finance"), 2).unwrap();
    assert_eq!(inst.status().label(), "approved");
    Ok(inst)
}

fn code(e: &dyn miette::Diagnostic) -> String {
    e.code().map(|c| c.to_string()).unwrap_or_default()
}

fn hash(n: u64) -> String {
    format!("{n:016x}")
}

fn new_version<'a>(flow: &'a str, hash: &'a str, source: &'a [u8]) -> NewVersion<'a> {
    NewVersion {
        flow,
        hash,
        name: "flow.yaml",
        source,
        meta: VersionMeta::default(),
    }
}

#[test]
fn a_fresh_registry_on_the_same_store_names_versions_as_before() {
    // the failure: two processes without a store name the same content differently
    let a = Registry::default();
    a.publish("claim.yaml", &source(1)).unwrap();
    let v2 = a.publish("claim.yaml", &source(2)).unwrap();
    assert_eq!(v2.revision, 2);
    let b = Registry::default();
    assert_eq!(b.publish("claim.yaml", &source(2)).unwrap().revision, 1);
    assert!(b.get(&v2).is_none());

    // with a store: the store's record names them, in any process
    let dir = TempDir::new("names");
    let a = registry(&dir);
    let v1 = a.publish("claim.yaml", &source(1)).unwrap();
    let v2 = a.publish("claim.yaml", &source(2)).unwrap();
    let v3 = a.publish("claim.yaml", &source(3)).unwrap();
    assert_eq!([v1.revision, v2.revision, v3.revision], [1, 2, 3]);
    // the same content again keeps the revision it first got
    assert_eq!(a.publish("claim.yaml", &source(1)).unwrap(), v1);
    assert_eq!(a.active("claim").unwrap().version(), &v1);
    drop(a);
    let b = registry(&dir);
    assert_eq!(b.publish("claim.yaml", &source(2)).unwrap(), v2);
    let v4 = b.publish("claim.yaml", &source(4)).unwrap();
    assert_eq!(v4.revision, 4);
    assert_eq!(b.publish("claim.yaml", &source(1)).unwrap(), v1);
    // a version this process never published loads from the store by its hash
    assert!(b.get(&v3).is_none());
    assert_eq!(b.load(&v3).unwrap().version(), &v3);
    assert_eq!(b.get(&v3).unwrap().version(), &v3, "kept once loaded");
    assert_eq!(b.get_by_hash("claim", &v3.hash).unwrap().version(), &v3);
    // and can become active again (rollback across restarts)
    b.rollback(&v3).unwrap();
    assert_eq!(b.active("claim").unwrap().version(), &v3);
    let records: Vec<(u64, String)> = b
        .store()
        .unwrap()
        .list("claim")
        .unwrap()
        .into_iter()
        .map(|r| (r.revision, r.hash))
        .collect();
    assert_eq!(
        records,
        [(1, v1.hash), (2, v2.hash), (3, v3.hash), (4, v4.hash)]
    );
}

#[test]
fn a_saved_instance_restores_in_a_rebuilt_registry_after_edits() {
    // the failure: a rebuilt registry without a store does not know the version
    let a = Registry::default();
    a.publish("claim.yaml", &source(1)).unwrap();
    let saved = saved_at_finance(&a, "k");
    for n in 2..=5 {
        a.publish("claim.yaml", &source(n)).unwrap();
    }
    let b = Registry::default();
    b.publish("claim.yaml", &source(5)).unwrap();
    let e = finish(&b, &saved).unwrap_err();
    assert_eq!(code(&e), "flowc::registry::unknown-version");

    // with a store: the version loads by its hash and the instance finishes on it
    let dir = TempDir::new("restore");
    let a = registry(&dir);
    let v1 = a.publish("claim.yaml", &source(1)).unwrap();
    let saved = saved_at_finance(&a, "k");
    for n in 2..=5 {
        a.publish("claim.yaml", &source(n)).unwrap();
    }
    drop(a);
    let b = registry(&dir);
    b.publish("claim.yaml", &source(5)).unwrap();
    let inst = finish(&b, &saved).unwrap();
    assert_eq!(inst.flow().version(), &v1);
    // even before the flow is published at all in the new process
    let c = registry(&dir);
    assert_eq!(finish(&c, &saved).unwrap().flow().version(), &v1);
    // loaded only to restore: it takes no new starts
    assert_eq!(
        code(
            &c.start("claim", "k", json!({"amount": 1.0}), 0)
                .unwrap_err()
        ),
        "flowc::registry::unknown-flow"
    );
}

#[test]
fn a_held_version_outlives_retention_and_prune() {
    let dir = TempDir::new("hold");
    let a = registry(&dir).retaining(2);
    let v1 = a.publish("claim.yaml", &source(1)).unwrap();
    let held = saved_at_finance(&a, "held");
    a.hold(&v1, "instance-held").unwrap();
    a.hold(&v1, "instance-held").unwrap(); // twice is one hold
    let v2 = a.publish("claim.yaml", &source(3)).unwrap();
    assert_eq!(v2.revision, 2);
    let unheld = saved_at_finance(&a, "unheld");
    for n in 4..=14 {
        a.publish("claim.yaml", &source(n)).unwrap();
    }
    drop(a);
    let b = registry(&dir).retaining(2);
    b.publish("claim.yaml", &source(14)).unwrap();
    let pruned: Vec<u64> = b
        .prune_store("claim")
        .unwrap()
        .iter()
        .map(|r| r.revision)
        .collect();
    // 13 contents; the newest 2 (12, 13) stay, and v1 is held
    assert_eq!(pruned, (2..=11).collect::<Vec<u64>>());
    assert_eq!(
        b.held().unwrap(),
        [Hold {
            flow: "claim".into(),
            hash: v1.hash.clone(),
            revision: 1,
            holder: "instance-held".into(),
            since: b.held().unwrap()[0].since,
        }]
    );
    assert_eq!(finish(&b, &held).unwrap().flow().version(), &v1);
    // the unheld instance's version is gone: a typed error, and its revision is never
    // given to other content
    assert_eq!(
        code(&finish(&b, &unheld).unwrap_err()),
        "flowc::registry::unknown-version"
    );
    assert_eq!(b.publish("claim.yaml", &source(15)).unwrap().revision, 14);
    assert_eq!(
        b.publish("claim.yaml", &source(3)).unwrap(),
        v2,
        "republished: same name"
    );
    // released: the next prune deletes it (v2 is active now, so it stays)
    assert!(b.release(&v1, "instance-held").unwrap());
    assert!(!b.release(&v1, "instance-held").unwrap());
    assert!(b.held().unwrap().is_empty());
    let c = registry(&dir).retaining(2);
    c.publish("claim.yaml", &source(3)).unwrap();
    let pruned: Vec<u64> = c
        .prune_store("claim")
        .unwrap()
        .iter()
        .map(|r| r.revision)
        .collect();
    assert_eq!(pruned, [1, 12]);
    assert_eq!(
        code(&finish(&c, &held).unwrap_err()),
        "flowc::registry::unknown-version"
    );
    let listed: Vec<(u64, bool)> = c
        .store()
        .unwrap()
        .list("claim")
        .unwrap()
        .iter()
        .map(|r| (r.revision, r.stored))
        .collect();
    assert_eq!(listed.len(), 14);
    assert_eq!(
        listed
            .iter()
            .filter(|(_, s)| *s)
            .map(|(r, _)| *r)
            .collect::<Vec<_>>(),
        [2, 13, 14]
    );
}

#[test]
fn pins_are_counted_across_restarts() {
    // the failure: pins of a registry without a store die with the process
    let dir = TempDir::new("pins");
    let a = registry(&dir).retaining(1);
    let v1 = a.publish("claim.yaml", &source(1)).unwrap();
    a.pin(&v1).unwrap();
    a.pin(&v1).unwrap();
    for n in 2..=4 {
        a.publish("claim.yaml", &source(n)).unwrap();
    }
    drop(a);
    let b = registry(&dir).retaining(1);
    let pins = |reg: &Registry| {
        reg.held()
            .unwrap()
            .iter()
            .filter(|h| h.holder.starts_with("pin:") && h.hash == v1.hash)
            .count()
    };
    assert_eq!(pins(&b), 2);
    assert!(
        b.prune_store("claim")
            .unwrap()
            .iter()
            .all(|r| r.revision != 1)
    );
    b.unpin(&v1).unwrap();
    assert_eq!(pins(&b), 1);
    assert!(b.prune_store("claim").unwrap().is_empty());
    assert!(b.load(&v1).is_ok());
    b.unpin(&v1).unwrap();
    assert_eq!(pins(&b), 0);
    // another process prunes: nothing holds v1 any more
    let c = registry(&dir).retaining(1);
    let pruned: Vec<u64> = c
        .prune_store("claim")
        .unwrap()
        .iter()
        .map(|r| r.revision)
        .collect();
    assert_eq!(pruned, [1]);
    // named holders cannot take the pins' names
    assert_eq!(
        code(&c.hold(&v1, "pin:mine").unwrap_err()),
        "flowc::store::invalid-key"
    );
}

#[test]
fn sources_with_their_own_revisions_name_versions() {
    let dir = TempDir::new("given");
    let a = registry(&dir);
    let h1 = a.publish_revision("claim.yaml", &source(1), 100).unwrap();
    let h2 = a.publish_revision("claim.yaml", &source(2), 105).unwrap();
    assert_eq!((h1.revision, h2.revision), (100, 105));
    // a rollback written as a new revision of the old content
    let again = a.publish_revision("claim.yaml", &source(1), 107).unwrap();
    assert_eq!((again.revision, &again.hash), (107, &h1.hash));
    let stored = a.store().unwrap().get("claim", &h1.hash).unwrap().unwrap();
    assert_eq!(stored.revisions, [100, 107]);
    assert_eq!(stored.source, source(1));
    // a revision names one content for ever
    let e = a
        .publish_revision("claim.yaml", &source(3), 105)
        .unwrap_err();
    assert_eq!(code(&e), "flowc::registry::revision-taken");
    let b = registry(&dir);
    let e = b
        .publish_revision("claim.yaml", &source(3), 105)
        .unwrap_err();
    assert_eq!(code(&e), "flowc::store::revision-taken");
    // a fresh process finds each revision of the content; the store continues after
    // the highest
    assert_eq!(b.load(&again).unwrap().version(), &again);
    assert_eq!(
        b.load(&h1).unwrap().version(),
        &again,
        "same content, kept copy"
    );
    let c = registry(&dir);
    assert_eq!(c.load(&h1).unwrap().version(), &h1);
    assert_eq!(c.publish("claim.yaml", &source(4)).unwrap().revision, 108);
}

#[test]
fn corrupt_files_give_typed_errors() {
    let dir = TempDir::new("corrupt");
    let store = DirStore::open(&*dir).unwrap();
    let h = hash(1);
    store.assign(&new_version("claim", &h, b"one")).unwrap();
    let record = dir.join("flows/claim/revisions/00000000000000000001.json");
    let content = dir.join(format!("flows/claim/{h}.src"));
    let corrupt = |e: StoreError, file: &Path, reason: &str| {
        assert_eq!(code(&e), "flowc::store::corrupt");
        let text = e.to_string();
        assert!(
            text.contains(&file.display().to_string()) && text.contains(reason),
            "{text}"
        );
    };
    // a torn record (as a writer without atomic rename would leave it)
    let full = std::fs::read(&record).unwrap();
    std::fs::write(&record, &full[..full.len() / 2]).unwrap();
    corrupt(store.list("claim").unwrap_err(), &record, "EOF");
    corrupt(store.get("claim", &h).unwrap_err(), &record, "EOF");
    // through a registry: the same typed error
    let reg = Registry::with_store(Options::default(), Arc::new(store.clone()));
    let v = VersionId {
        flow: "claim".into(),
        revision: 1,
        hash: h.clone(),
    };
    assert_eq!(code(&reg.load(&v).unwrap_err()), "flowc::store::corrupt");
    // a record under another revision's name
    std::fs::write(
        &record,
        String::from_utf8(full.clone())
            .unwrap()
            .replace("\"revision\": 1", "\"revision\": 2"),
    )
    .unwrap();
    corrupt(
        store.list("claim").unwrap_err(),
        &record,
        "not its own name",
    );
    // a huge file: refused after the limit, not read whole
    std::fs::write(&record, vec![b' '; 70_000]).unwrap();
    corrupt(
        store.list("claim").unwrap_err(),
        &record,
        "65536-byte limit",
    );
    std::fs::write(&record, &full).unwrap();
    assert_eq!(store.list("claim").unwrap().len(), 1);
    // an edited source
    std::fs::write(&content, b"owe").unwrap();
    corrupt(store.get("claim", &h).unwrap_err(), &content, "checksum");
    std::fs::write(&content, b"one").unwrap();
    assert_eq!(store.get("claim", &h).unwrap().unwrap().source, b"one");
    // a stray file among the records
    let stray = dir.join("flows/claim/revisions/notes.txt");
    std::fs::write(&stray, b"x").unwrap();
    corrupt(
        store.list("claim").unwrap_err(),
        &stray,
        "not a revision record name",
    );
    std::fs::remove_file(&stray).unwrap();
    // a corrupt hold
    let v = store.list("claim").unwrap()[0].version();
    store.hold(&v, "inst 1/a").unwrap();
    let hold = dir.join(format!("holds/claim/{h}/inst%201%2Fa.json"));
    assert!(hold.is_file());
    std::fs::write(&hold, b"{").unwrap();
    corrupt(store.held().unwrap_err(), &hold, "EOF");
    std::fs::remove_file(&hold).unwrap();
    // the format file
    let format = dir.join("flowc-store.json");
    std::fs::write(&format, b"{\"format\": 2}").unwrap();
    let e = DirStore::open(&*dir).unwrap_err();
    assert_eq!(code(&e), "flowc::store::format");
    assert_eq!(
        e.to_string(),
        format!(
            "version store `{}` has format 2; this flowc reads format 1",
            format.display()
        )
    );
    std::fs::write(&format, b"not json").unwrap();
    corrupt(DirStore::open(&*dir).unwrap_err(), &format, "expected");
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn writes_are_atomic_and_leave_no_temporaries() {
    let dir = TempDir::new("atomic");
    let reg = registry(&dir).retaining(1);
    let v1 = reg.publish("claim.yaml", &source(1)).unwrap();
    reg.hold(&v1, "i-1").unwrap();
    reg.pin(&v1).unwrap();
    let v2 = reg.publish("claim.yaml", &source(2)).unwrap();
    reg.publish("claim.yaml", &source(3)).unwrap();
    reg.unpin(&v1).unwrap();
    reg.prune_store("claim").unwrap();
    let all = files(&dir);
    assert!(
        all.iter().all(|f| !f.contains("/.") && !f.starts_with('.')),
        "{all:?}"
    );
    assert_eq!(
        all,
        [
            "flowc-store.json".to_owned(),
            format!("flows/claim/{}.src", v1.hash),
            format!(
                "flows/claim/{}.src",
                reg.active("claim").unwrap().version().hash
            ),
            "flows/claim/revisions/00000000000000000001.json".to_owned(),
            "flows/claim/revisions/00000000000000000002.json".to_owned(),
            "flows/claim/revisions/00000000000000000003.json".to_owned(),
            format!("holds/claim/{}/i-1.json", v1.hash),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    assert!(
        reg.store()
            .unwrap()
            .get("claim", &v2.hash)
            .unwrap()
            .is_none()
    );
    // a temporary a crashed writer left behind is not a record
    std::fs::write(
        dir.join("flows/claim/revisions/.00000000000000000004.json.1.0.tmp"),
        b"{",
    )
    .unwrap();
    assert_eq!(reg.store().unwrap().list("claim").unwrap().len(), 3);
    assert_eq!(reg.publish("claim.yaml", &source(4)).unwrap().revision, 4);
    // every record is whole JSON with its metadata
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("flows/claim/revisions/00000000000000000004.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["format"], 1);
    assert_eq!(record["revision"], 4);
    assert_eq!(record["name"], "claim.yaml");
    assert_eq!(record["compiler"], env!("CARGO_PKG_VERSION"));
    assert!(record["time"].as_u64().unwrap() > 1_700_000_000);
}

#[test]
fn several_writers_on_one_directory_never_share_a_revision() {
    let dir = TempDir::new("writers");
    DirStore::open(&*dir).unwrap();
    let root: PathBuf = dir.to_path_buf();
    // 4 writers (each its own store handle, as separate processes would be) store the
    // same 12 contents in different orders
    let handles: Vec<_> = (0..4)
        .map(|w| {
            let root = root.clone();
            std::thread::spawn(move || {
                let store = DirStore::open(&root).unwrap();
                let mut got = Vec::new();
                for i in 0..12u64 {
                    let n = (i * (w + 1) + w) % 12;
                    let source = format!("content {n}");
                    let r = store
                        .assign(&new_version("claim", &hash(n), source.as_bytes()))
                        .unwrap();
                    got.push((n, r.revision));
                }
                got
            })
        })
        .collect();
    let mut seen: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    for h in handles {
        for (n, revision) in h.join().unwrap() {
            // every writer got the same revision for the same content
            assert_eq!(*seen.entry(n).or_insert(revision), revision, "content {n}");
        }
    }
    let mut revisions: Vec<u64> = seen.values().copied().collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=12).collect::<Vec<u64>>());
    let store = DirStore::open(&*dir).unwrap();
    assert_eq!(store.list("claim").unwrap().len(), 12);
    assert_eq!(store.flows().unwrap(), ["claim"]);
}

#[test]
fn every_store_error_has_its_code() {
    let dir = TempDir::new("codes");
    let store = DirStore::open(&*dir).unwrap();
    let h = hash(7);
    let v = |flow: &str, hash: &str| VersionId {
        flow: flow.into(),
        revision: 1,
        hash: hash.into(),
    };
    // io: a root that is a file
    let file = dir.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let e = DirStore::open(&file).unwrap_err();
    assert_eq!(code(&e), "flowc::store::io");
    assert!(
        e.to_string()
            .starts_with(&format!("cannot create `{}`", file.display()))
    );
    // invalid keys
    for e in [
        store.list("Claim").unwrap_err(),
        store.get("claim", "xyz").unwrap_err(),
        store.hold(&v("claim", &h), "").unwrap_err(),
        store.put(&new_version("claim", &h, b"x"), 0).unwrap_err(),
        store.list("../etc").unwrap_err(),
    ] {
        assert_eq!(code(&e), "flowc::store::invalid-key", "{e}");
    }
    assert_eq!(
        store.list("Claim").unwrap_err().to_string(),
        "invalid flow id `Claim`: not a flow id"
    );
    // too large
    let big = vec![b'a'; 8 * 1024 * 1024 + 1];
    let e = store.assign(&new_version("claim", &h, &big)).unwrap_err();
    assert_eq!(code(&e), "flowc::store::too-large");
    let mut long = new_version("claim", &h, b"x");
    long.meta.author = Some("a".repeat(257));
    let e = store.assign(&long).unwrap_err();
    assert_eq!(e.to_string(), "the author is 257 bytes; the limit is 256");
    // revision taken
    store.put(&new_version("claim", &h, b"x"), 3).unwrap();
    store.put(&new_version("claim", &h, b"x"), 3).unwrap(); // the same again: fine
    let e = store
        .put(&new_version("claim", &hash(8), b"y"), 3)
        .unwrap_err();
    assert_eq!(code(&e), "flowc::store::revision-taken");
    // not stored: a hold on content the store never had
    let e = store.hold(&v("claim", &hash(9)), "i").unwrap_err();
    assert_eq!(code(&e), "flowc::store::not-stored");
    assert!(
        store.held().unwrap().is_empty(),
        "a refused hold leaves nothing"
    );
    // format and corrupt: see corrupt_files_give_typed_errors
}

#[test]
fn every_registry_store_error_has_its_code() {
    // no store: durable operations are refused
    let reg = Registry::default();
    let v1 = reg.publish("claim.yaml", &source(1)).unwrap();
    assert_eq!(
        code(&reg.hold(&v1, "i").unwrap_err()),
        "flowc::registry::no-store"
    );
    assert_eq!(
        reg.held().unwrap_err().to_string(),
        "held needs a version store; this registry keeps versions in memory only"
    );
    // a revision that names other content, in memory
    reg.publish_revision("claim.yaml", &source(2), 5).unwrap();
    assert_eq!(
        code(
            &reg.publish_revision("claim.yaml", &source(3), 5)
                .unwrap_err()
        ),
        "flowc::registry::revision-taken"
    );
    assert_eq!(reg.publish("claim.yaml", &source(3)).unwrap().revision, 6);
    // a stored source that compiles to other content, or not at all
    let dir = TempDir::new("reg-codes");
    let store = Arc::new(DirStore::open(&*dir).unwrap());
    let reg = Registry::with_store(Options::default(), store.clone());
    let wrong = hash(42);
    let src = source(1);
    store.assign(&new_version("claim", &wrong, &src)).unwrap();
    let e = reg.load(&VersionId {
        flow: "claim".into(),
        revision: 1,
        hash: wrong.clone(),
    });
    let e = e.unwrap_err();
    assert_eq!(code(&e), "flowc::registry::hash-mismatch");
    assert!(e.to_string().starts_with(&format!(
        "the stored source of flow `claim` content {wrong} compiles to content "
    )));
    let broken = hash(43);
    store
        .assign(&new_version("claim", &broken, b"id: ["))
        .unwrap();
    let e = reg
        .load(&VersionId {
            flow: "claim".into(),
            revision: 2,
            hash: broken,
        })
        .unwrap_err();
    assert_eq!(code(&e), "flowc::registry::stored-invalid");
    // a store failure on publish is a diagnostic on the file
    std::fs::remove_dir_all(&*dir).unwrap();
    std::fs::write(&*dir, b"not a directory").unwrap();
    let d = reg.publish("claim.yaml", &source(9)).unwrap_err();
    assert_eq!(
        d.iter().map(|x| x.code()).collect::<Vec<_>>(),
        ["flowc::store::io"]
    );
    assert!(reg.active("claim").is_none(), "nothing published");
    std::fs::remove_file(&*dir).unwrap();
}
