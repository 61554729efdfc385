//! Storage faults under a real server: the state directory turns read-only, then the disk
//! fills up. Throughout, the server keeps serving and acknowledging changes, logs the
//! failure, reports it in `/metrics`, leaves the last good `state.json` untouched, retries,
//! and writes the whole current state once the fault clears.
//!
//! Needs root (it mounts a small tmpfs); skipped loudly otherwise.

use crate::common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, Ws};
use serde_json::{json, Value};

/// A tmpfs mounted for the test; unmounted on drop, also when the test panics.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(at.to_owned()))
    }

    /// Retries: remounting read-only fails while the writer holds its temp file open.
    fn remount(&self, mode: &str) {
        let ok = eventually(Duration::from_secs(3), || {
            Command::new("mount")
                .args(["-o", &format!("remount,{mode}")])
                .arg(&self.0)
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        });
        assert!(ok, "remount {mode}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A counter from `/metrics`, through the shared reader, for this test's sync polling
/// closures (the runtime is multi-threaded: `block_in_place` is allowed).
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let text = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(common::churn::metrics(addr))
    });
    common::churn::must(&text, name) as u64
}

fn gain_on_disk(path: &Path, id: &str) -> Option<f64> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["channels_state"][id]["gains"]["0"].as_f64()
}

fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

async fn set_gain(ws: &mut Ws, gain: f64) {
    ws.send(json!({"type":"update_gain","channel":0,"gain":gain}))
        .await;
    let ack = ws.recv_type("gain_updated").await;
    assert_eq!(
        ack["gain"], gain,
        "the server acknowledges while the disk fails"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_and_full_disk_are_survived_and_caught_up() {
    let top = tempfile::tempdir().unwrap();
    let mnt = top.path().join("state");
    let Some(fs) = Tmpfs::mount(&mnt, "256k") else {
        common::cannot_run("cannot mount a tmpfs (not root?)");
        return;
    };
    // Config and log stay off the faulty file system (an open log would also keep it
    // from turning read-only).
    let state = mnt.join("state.json");
    let server = Server::start_with_state(top.path(), &state, &[]);
    let (a, log) = (server.addr, server.stderr_log.clone());
    let mut ws = Ws::connect(&server.ws_url()).await;
    let w = ws.hello(json!({"name": "Ana"})).await;
    let id = w["client_id"].as_str().unwrap().to_string();
    set_gain(&mut ws, 0.5).await;
    assert!(eventually(Duration::from_secs(2), || gain_on_disk(
        &state, &id
    ) == Some(0.5)));
    let good = std::fs::read(&state).unwrap();
    assert_eq!(metric(a, "monmix_state_write_failing"), 0);

    // 1. Read-only: every write fails with EROFS.
    fs.remount("ro");
    let failures = metric(a, "monmix_state_write_failures_total");
    for g in [0.25, 0.375, 0.125] {
        set_gain(&mut ws, g).await;
    }
    assert!(eventually(Duration::from_secs(3), || {
        metric(a, "monmix_state_write_failing") == 1
            && metric(a, "monmix_state_write_failures_total") > failures
    }));
    // It keeps serving (a new phone can join and hear its mix) and keeps retrying.
    let mut other = Ws::connect(&server.ws_url()).await;
    let w2 = other
        .hello(json!({"client_id": id, "token": w["token"]}))
        .await;
    assert_eq!(w2["mix"]["gains"]["0"], 0.125, "served from memory");
    let f1 = metric(a, "monmix_state_write_failures_total");
    assert!(eventually(Duration::from_secs(4), || metric(
        a,
        "monmix_state_write_failures_total"
    ) > f1));
    assert_eq!(
        std::fs::read(&state).unwrap(),
        good,
        "the good file was touched"
    );
    fs.remount("rw");
    assert!(
        eventually(Duration::from_secs(4), || gain_on_disk(&state, &id)
            == Some(0.125)),
        "not caught up after the fault cleared"
    );
    assert!(eventually(Duration::from_secs(2), || metric(
        a,
        "monmix_state_write_failing"
    ) == 0));

    // 2. Full disk: a filler takes every free block; writes fail with ENOSPC.
    let good = std::fs::read(&state).unwrap();
    let filler = mnt.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    set_gain(&mut ws, 0.75).await;
    assert!(eventually(Duration::from_secs(3), || metric(
        a,
        "monmix_state_write_failing"
    ) == 1));
    assert_eq!(
        std::fs::read(&state).unwrap(),
        good,
        "the good file was touched"
    );
    assert!(
        !mnt.join("state.json.tmp").exists(),
        "a half-written temp file is left eating the space"
    );
    std::fs::remove_file(&filler).unwrap();
    assert!(
        eventually(Duration::from_secs(4), || gain_on_disk(&state, &id)
            == Some(0.75)),
        "not caught up after space came back"
    );
    // The backup holds the generation before, whole.
    let bak: Value =
        serde_json::from_str(&std::fs::read_to_string(mnt.join("state.json.bak")).unwrap())
            .unwrap();
    assert_eq!(bak["channels_state"][&id]["gains"]["0"], 0.125);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("writing state failed") && text.contains("after failures"),
        "the failure and the recovery are logged"
    );
    drop((ws, other));
    assert_eq!(server.terminate(), Some(0));
    drop(fs);
}
