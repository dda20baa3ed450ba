//! `flowc watch` run as a user runs it: the directory spelt `.`, relative, absolute and
//! through a symbolic link. Each run publishes, republishes a valid edit, rejects a broken
//! edit while the last good version stays active, ignores other YAML and vendored
//! directories, and retires a deleted flow. Every wait is bounded.
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

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const FLOW: &str = "apiVersion: flowc/v1
kind: ApprovalFlow
id: purchase
context:
  amount: double
steps:
  - id: manager
    type: approval
    assignees: { role: manager }
    skipCondition: amount < 100.0
";

/// A fresh directory `<tmp>/flowc-watch-<name>-<pid>` holding `flows/` with one flow,
/// other YAML and a `node_modules/` of broken YAML (canonical, so that expectations
/// can be spelt from it).
fn repo(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("flowc-watch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let flows = root.join("flows");
    std::fs::create_dir_all(flows.join("node_modules/pkg")).unwrap();
    std::fs::write(flows.join("purchase.yaml"), FLOW).unwrap();
    std::fs::write(
        flows.join("docker-compose.yml"),
        "services:\n  web:\n    image: nginx\n",
    )
    .unwrap();
    std::fs::write(flows.join("node_modules/pkg/broken.yaml"), "a: [\n").unwrap();
    root.canonicalize().unwrap()
}

struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watch {
    fn start(cwd: &Path, dir: &str) -> Self {
        Self::start_with(cwd, &[dir, "--debounce-ms", "50"])
    }

    fn start_with(cwd: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flowc"))
            .arg("watch")
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn flowc watch");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line, within 20 s.
    fn next(&self, what: &str) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no line for {what} within 20 s"))
    }

    /// The version in `published <version> from <path>`, checking the rest.
    fn published(&self, revision: u64, path: &str) -> String {
        let line = self.next("a publish");
        let rest = line
            .strip_prefix(&format!("published purchase@{revision}#"))
            .unwrap_or_else(|| panic!("expected publish of revision {revision}, got `{line}`"));
        assert!(
            rest.ends_with(&format!(" from {path}")),
            "expected `… from {path}`, got `{line}`"
        );
        line.split(' ').nth(1).unwrap().to_owned()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `flowc watch <dir>` in `cwd` and edits `flows/` (the real directory) under
/// `root`; `shown` is how the log names `flows/purchase.yaml`.
fn edit_and_expect(root: &Path, cwd: &Path, dir: &str, shown: &str) {
    let flows = root.join("flows");
    let w = Watch::start(cwd, dir);
    w.published(1, shown);
    assert!(w.next("the watch start").starts_with("watching "));
    // other YAML and vendored directories change: nothing to say
    std::fs::write(flows.join("docker-compose.yml"), "services: {}\n").unwrap();
    std::fs::write(flows.join("node_modules/pkg/broken.yaml"), "b: {\n").unwrap();
    // a valid edit republishes (the scan and the events name the file one way)
    std::fs::write(flows.join("purchase.yaml"), FLOW.replace("100.0", "200.0")).unwrap();
    let v2 = w.published(2, shown);
    // a broken edit is rejected and the active version named
    std::fs::write(
        flows.join("purchase.yaml"),
        FLOW.replace("100.0", "200.0") + "    next: nowhere\n",
    )
    .unwrap();
    assert_eq!(
        w.next("the rejection"),
        format!("rejected {shown}: 1 error(s); {v2} stays active")
    );
    // a delete retires the flow
    std::fs::remove_file(flows.join("purchase.yaml")).unwrap();
    assert_eq!(
        w.next("the retirement"),
        format!("retired purchase: {shown} is gone (running instances keep their version)")
    );
    drop(w);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn watch_dot() {
    let root = repo("dot");
    edit_and_expect(&root, &root.join("flows"), ".", "./purchase.yaml");
}

#[test]
fn watch_relative_path() {
    let root = repo("relative");
    edit_and_expect(&root, &root, "flows", "flows/purchase.yaml");
}

#[test]
fn watch_absolute_path() {
    let root = repo("absolute");
    let dir = root.join("flows").display().to_string();
    let shown = root.join("flows/purchase.yaml").display().to_string();
    edit_and_expect(&root, Path::new("/"), &dir, &shown);
}

#[cfg(unix)]
#[test]
fn watch_symlinked_directory() {
    let root = repo("symlink");
    std::os::unix::fs::symlink(root.join("flows"), root.join("link")).unwrap();
    edit_and_expect(&root, &root, "link", "link/purchase.yaml");
}

/// The library side: `DirSource` keys every file by one canonical path, whatever the
/// spelling it is given; other YAML and vendored directories are not flows; a file it
/// holds stays a flow file when an edit removes its markers (rejected, not retired).
#[cfg(unix)]
#[test]
fn dir_source_names_one_file_one_way() {
    use flowc::registry::Registry;
    use flowc::source::{DirSource, SourceEvent};
    use std::sync::Arc;

    let root = repo("library");
    std::os::unix::fs::symlink(root.join("flows"), root.join("link")).unwrap();
    let source = DirSource::new(root.join("link/../link/."), Arc::new(Registry::default()));
    assert_eq!(source.dir(), root.join("flows"));
    let describe = |events: Vec<SourceEvent>| -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                SourceEvent::Published { path, version } => {
                    format!(
                        "published {}@{} {}",
                        version.flow,
                        version.revision,
                        path.display()
                    )
                }
                SourceEvent::Unchanged { path, version } => {
                    format!(
                        "unchanged {}@{} {}",
                        version.flow,
                        version.revision,
                        path.display()
                    )
                }
                SourceEvent::Rejected { path, kept, .. } => format!(
                    "rejected {} kept {}",
                    path.display(),
                    kept.as_ref().map_or(0, |v| v.revision)
                ),
                SourceEvent::Retired { path, flow } => {
                    format!("retired {flow} {}", path.display())
                }
                other => format!("{other:?}"),
            })
            .collect()
    };
    let file = root.join("flows/purchase.yaml").display().to_string();
    assert_eq!(
        describe(source.scan().unwrap()),
        [format!("published purchase@1 {file}")]
    );
    // the same file through the link, relative to another directory, with `..`
    std::fs::write(
        root.join("flows/purchase.yaml"),
        FLOW.replace("100.0", "300.0"),
    )
    .unwrap();
    assert_eq!(
        describe(source.sync(&root.join("link/purchase.yaml"))),
        [format!("published purchase@2 {file}")]
    );
    assert_eq!(
        describe(source.sync(&root.join("flows/node_modules/../purchase.yaml"))),
        [format!("unchanged purchase@2 {file}")]
    );
    // other YAML is no flow
    assert!(
        source
            .sync(&root.join("flows/docker-compose.yml"))
            .is_empty()
    );
    // an edit that drops the markers is a broken flow, not a retirement
    std::fs::write(root.join("flows/purchase.yaml"), "id: [\n").unwrap();
    assert_eq!(
        describe(source.sync(&root.join("flows/purchase.yaml"))),
        [format!("rejected {file} kept 2")]
    );
    std::fs::remove_file(root.join("flows/purchase.yaml")).unwrap();
    assert_eq!(
        describe(source.sync(&root.join("link/purchase.yaml"))),
        [format!("retired purchase {file}")]
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// A renamed flow file keeps its flow active: the batch holding the rename is taken as a
/// whole, so the flow moves to the new name without a retirement (or a conflict) in
/// between, whichever way the two names sort.
#[test]
fn a_renamed_flow_file_is_never_retired() {
    let root = repo("rename");
    let flows = root.join("flows");
    let w = Watch::start(&root, flows.to_str().unwrap());
    w.published(1, &flows.join("purchase.yaml").display().to_string());
    assert!(w.next("the watch start").starts_with("watching "));
    // renamed to a name after the old one, then to one before it
    for (from, to) in [
        ("purchase.yaml", "zz-purchase.yaml"),
        ("zz-purchase.yaml", "aa-purchase.yaml"),
    ] {
        std::fs::rename(flows.join(from), flows.join(to)).unwrap();
        let line = w.next("the rename");
        assert!(
            line.starts_with("published purchase@1#")
                && line.ends_with(&format!(" from {}", flows.join(to).display())),
            "{from} -> {to}: expected a publish from the new name, got `{line}`"
        );
    }
    // the next thing said is about the next edit: nothing was retired in between
    std::fs::write(
        flows.join("aa-purchase.yaml"),
        FLOW.replace("100.0", "200.0"),
    )
    .unwrap();
    w.published(2, &flows.join("aa-purchase.yaml").display().to_string());
    drop(w);
    let _ = std::fs::remove_dir_all(root);
}

/// Temp file + rename, as editors and `git checkout` write.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The JSON line of the next event that is not `unchanged`.
fn next_json(w: &Watch, what: &str) -> serde_json::Value {
    loop {
        let line = w.next(what);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["event"] != "unchanged" {
            return v;
        }
    }
}

/// `flowc watch --format json`: two files swapping their flow ids (temp + rename, in one
/// batch or two) end with each file publishing the other's flow, never stuck in
/// conflicts; a broken file moved keeps its flow's active version (`flow` and `active`
/// on the reject) instead of retiring it.
#[test]
fn watch_json_swapped_ids_and_a_broken_file_moved() {
    let root = repo("swap");
    let flows = root.join("flows");
    std::fs::remove_file(flows.join("purchase.yaml")).unwrap();
    std::fs::create_dir_all(flows.join("sub")).unwrap();
    let a = flows.join("a.yaml");
    let b = flows.join("b.yaml");
    std::fs::write(&a, FLOW.replace("purchase", "xx")).unwrap();
    std::fs::write(&b, FLOW.replace("purchase", "yy")).unwrap();
    let w = Watch::start_with(
        &root,
        &["flows", "--format", "json", "--debounce-ms", "300"],
    );
    assert_eq!(next_json(&w, "a")["flow"], "xx");
    assert_eq!(next_json(&w, "b")["flow"], "yy");
    // JSON has no `watching` line: give the watcher time to start after the scan
    std::thread::sleep(Duration::from_secs(1));
    replace(&a, &FLOW.replace("purchase", "yy"));
    replace(&b, &FLOW.replace("purchase", "xx"));
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let v = next_json(&w, "the swap");
        assert_ne!(v["event"], "reject", "{v}");
        if v["event"] == "publish" {
            seen.push((
                v["flow"].as_str().unwrap().to_owned(),
                v["path"].as_str().unwrap().to_owned(),
            ));
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("xx".to_owned(), "flows/b.yaml".to_owned()),
            ("yy".to_owned(), "flows/a.yaml".to_owned())
        ]
    );
    // not stuck: an edit publishes
    std::fs::write(&a, FLOW.replace("purchase", "yy").replace("100.0", "5.0")).unwrap();
    let v = next_json(&w, "the edit");
    assert_eq!(
        (&v["event"], &v["flow"], &v["revision"]),
        (
            &serde_json::json!("publish"),
            &serde_json::json!("yy"),
            &serde_json::json!(2)
        )
    );
    // broken, then moved while broken: the reject names the flow and what stays active
    std::fs::write(&a, FLOW.replace("purchase", "yy") + "    next: nowhere\n").unwrap();
    let v = next_json(&w, "the broken edit");
    assert_eq!(v["event"], "reject");
    assert_eq!(v["flow"], "yy");
    assert_eq!(v["active"]["revision"], 2);
    std::fs::rename(&a, flows.join("sub/a.yaml")).unwrap();
    let v = next_json(&w, "the move");
    assert_eq!(v["event"], "reject", "{v}");
    assert_eq!(v["flow"], "yy");
    assert_eq!(v["active"]["revision"], 2);
    assert_eq!(v["diagnostics"][0]["file"], "flows/sub/a.yaml");
    // a copy of b claims xx: refused with the duplicate-id code at its `id:` value
    std::fs::write(flows.join("c.yaml"), FLOW.replace("purchase", "xx")).unwrap();
    let v = next_json(&w, "the duplicate");
    assert_eq!(v["event"], "reject");
    assert_eq!(v["flow"], "xx");
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "flowc::check::duplicate-flow-id");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(3), Some(5))
    );
    assert_eq!(v["active"]["flow"], "xx");
    // the same content written again: an `unchanged` line
    std::fs::write(&b, FLOW.replace("purchase", "xx")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&w.next("the rewrite")).unwrap();
    assert_eq!(
        (&v["event"], &v["flow"], &v["revision"], &v["path"]),
        (
            &serde_json::json!("unchanged"),
            &serde_json::json!("xx"),
            &serde_json::json!(1),
            &serde_json::json!("flows/b.yaml")
        )
    );
    drop(w);
    let _ = std::fs::remove_dir_all(root);
}

/// An edit refused because another file holds the id it now declares keeps the file's
/// flow active (the log names the version kept) and never says the file is gone; when
/// the holder goes, the file takes the id over and its old flow is retired.
#[test]
fn a_refused_id_edit_keeps_the_previous_flow() {
    let root = repo("refused-id");
    let flows = root.join("flows");
    let other = FLOW.replace("id: purchase", "id: other");
    std::fs::write(flows.join("other.yaml"), &other).unwrap();
    let w = Watch::start(&root, "flows");
    let first = w.next("the publish of other");
    assert!(
        first.starts_with("published other@1#") && first.ends_with(" from flows/other.yaml"),
        "{first}"
    );
    let kept = first.split(' ').nth(1).unwrap().to_owned();
    w.published(1, "flows/purchase.yaml");
    assert!(w.next("the watch start").starts_with("watching "));
    std::fs::write(flows.join("other.yaml"), FLOW.replace("100.0", "300.0")).unwrap();
    assert_eq!(
        w.next("the refusal"),
        format!(
            "rejected flows/other.yaml: flow `purchase` is already defined in flows/purchase.yaml; {kept} stays active"
        )
    );
    std::fs::remove_file(flows.join("purchase.yaml")).unwrap();
    w.published(2, "flows/other.yaml");
    assert_eq!(
        w.next("the retirement"),
        "retired other: flows/other.yaml no longer defines it (running instances keep their version)"
    );
    drop(w);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn watch_dir_stops_cleanly_on_sigterm() {
    let root = repo("sigterm");
    let mut w = Watch::start(&root, "flows");
    // the last line before it waits: the watch is set up (signals handled)
    loop {
        if w.next("the watching line").starts_with("watching flows") {
            break;
        }
    }
    let pid = w.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = w.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // stopped, as `flowc watch --etcd` does: exit 0, not killed by the signal
    assert_eq!(status.code(), Some(0), "{status:?}");
    let _ = std::fs::remove_dir_all(&root);
}

/// `flowc watch DIR` refuses the etcd watch's options instead of ignoring them (a probe
/// passed `--metrics-addr` to a directory watch and got no metrics, without a word).
#[cfg(feature = "etcd")]
#[test]
fn watch_dir_refuses_options_of_the_etcd_watch() {
    let root = repo("etcd-options");
    for args in [
        vec!["--etcd", "http://127.0.0.1:1"],
        vec!["--tenant", "acme"],
        vec!["--metrics-addr", "127.0.0.1:0"],
        vec!["--snapshot", "snap"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowc"))
            .arg("watch")
            .arg(root.join("flows"))
            .args(&args)
            .env_remove("FLOWC_ETCD")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!(
                "error: `{}` is an option of `flowc watch --etcd`, not of `flowc watch DIR`",
                args[0]
            )),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
