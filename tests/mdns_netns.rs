//! mDNS inside a network namespace this test creates (only `lo`, multicast on): nothing
//! is ever sent on a real interface. `monmix discover` finds the three services with the
//! right TXT and ports; after SIGTERM the goodbye packets remove them.
//! Skips (loudly) when not root or without `ip`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Netns(String);

impl Netns {
    fn create() -> Option<Netns> {
        let root = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&root.stdout).trim() != "0" {
            eprintln!("\n*** SKIPPED: mDNS tests need root (network namespaces) ***\n");
            return None;
        }
        let name = format!("monmix-mdns-{}", std::process::id());
        let ok = |args: &[&str]| Command::new("ip").args(args).status().map(|s| s.success()).unwrap_or(false);
        if !ok(&["netns", "add", &name]) {
            eprintln!("\n*** SKIPPED: `ip netns add` failed (no iproute2 or no CAP_SYS_ADMIN) ***\n");
            return None;
        }
        let ns = Netns(name);
        assert!(ok(&["-n", &ns.0, "link", "set", "lo", "up"]));
        assert!(ok(&["-n", &ns.0, "link", "set", "lo", "multicast", "on"]));
        assert!(ok(&["-n", &ns.0, "route", "add", "224.0.0.0/4", "dev", "lo"]));
        Some(ns)
    }

    fn spawn(&self, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.0, env!("CARGO_BIN_EXE_monmix")])
            .args(args)
            .env("MONMIX_LOG", "info,mdns_sd=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn in netns")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(rx: &mpsc::Receiver<String>, t: Duration, mut pred: impl FnMut(&str) -> bool) -> bool {
    let deadline = Instant::now() + t;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                eprintln!("  | {l}");
                if pred(&l) {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn discover_finds_the_three_services_and_goodbye_removes_them() {
    let Some(ns) = Netns::create() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("monmix.toml"), "[server]\nname = \"Stage Left\"\n[mdns]\nhost_name = \"monmix-test\"\n").unwrap();
    let state = dir.path().join("state.json");
    let mut server = Kill(ns.spawn(&[
        "serve",
        "--config",
        dir.path().join("monmix.toml").to_str().unwrap(),
        "--input",
        "tones",
        "--channels",
        "8",
        "--http",
        "127.0.0.1:0",
        "--osc",
        "127.0.0.1:0",
        "--state",
        state.to_str().unwrap(),
        "--no-qr",
    ]));
    let srv = lines(&mut server.0);
    let (mut http, mut osc) = (String::new(), String::new());
    assert!(
        wait_for(&srv, Duration::from_secs(30), |l| {
            if let Some(a) = l.strip_prefix("monmix listening on http://") {
                http = a.trim_end_matches('/').to_string();
            }
            if let Some(a) = l.strip_prefix("monmix osc on udp://") {
                osc = a.to_string();
            }
            l.starts_with("Join from")
        }),
        "server did not start"
    );
    let http_port = http.rsplit(':').next().unwrap().to_string();
    let osc_port = osc.rsplit(':').next().unwrap().to_string();

    let mut browser = Kill(ns.spawn(&[
        "discover",
        "--timeout",
        "30",
        "--events",
        "--service",
        "_monmix._tcp",
        "--service",
        "_http._tcp",
        "--service",
        "_osc._udp.local.",
    ]));
    let rx = lines(&mut browser.0);
    let mut seen = std::collections::BTreeMap::new();
    wait_for(&rx, Duration::from_secs(15), |l| {
        if let Some(rest) = l.strip_prefix("resolved\t") {
            let fullname = rest.split('\t').next().unwrap().to_string();
            seen.insert(fullname, rest.to_string());
        }
        seen.len() >= 3
    });
    let monmix = seen.get("Stage Left._monmix._tcp.local.").unwrap_or_else(|| panic!("_monmix._tcp not found: {seen:?}"));
    for want in [
        format!("http://127.0.0.1:{http_port}/"),
        format!("http://monmix-test.local:{http_port}/"),
        format!("port={http_port}"),
        "ws=/ws".into(),
        "whep=/whep".into(),
        format!("osc={osc_port}"),
        "channels=8".into(),
        "name=Stage Left".into(),
        format!("version={}", env!("CARGO_PKG_VERSION")),
    ] {
        assert!(monmix.contains(&want), "{want:?} missing in {monmix}");
    }
    let page = seen.get("Stage Left._http._tcp.local.").expect("_http._tcp found");
    assert!(page.contains(&format!("port={http_port}")), "{page}");
    let surf = seen.get("Stage Left._osc._udp.local.").expect("_osc._udp found");
    assert!(surf.contains(&format!("port={osc_port}")), "{surf}");

    // SIGTERM: goodbye packets remove all three.
    let st = Command::new("kill").args(["-TERM", &server.0.id().to_string()]).status().unwrap();
    assert!(st.success());
    let mut removed = std::collections::BTreeSet::new();
    wait_for(&rx, Duration::from_secs(10), |l| {
        if let Some(f) = l.strip_prefix("removed\t") {
            removed.insert(f.to_string());
        }
        removed.len() >= 3
    });
    assert_eq!(removed.len(), 3, "removed: {removed:?}");
    let code = server.0.wait().unwrap();
    assert!(code.success(), "server exit {code:?}");
    drop(browser);
    drop(ns);
}

#[test]
fn discover_without_servers_says_so_and_exits() {
    let Some(ns) = Netns::create_named("-empty") else { return };
    let t = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, env!("CARGO_BIN_EXE_monmix"), "discover", "--timeout", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no monmix server found"));
    assert!(t.elapsed() < Duration::from_secs(5));
}

impl Netns {
    fn create_named(suffix: &str) -> Option<Netns> {
        // A second namespace name so both tests can run in parallel.
        let base = Netns::create()?;
        let name = format!("{}{suffix}", base.0);
        let ok = Command::new("ip").args(["netns", "add", &name]).status().map(|s| s.success()).unwrap_or(false);
        drop(base);
        if !ok {
            return None;
        }
        let ns = Netns(name);
        let _ = Command::new("ip").args(["-n", &ns.0, "link", "set", "lo", "up"]).status();
        Some(ns)
    }
}
