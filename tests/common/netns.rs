//! A throwaway network namespace (only `lo`, multicast on) for tests that must not touch a
//! real interface: mDNS, and tools that bind every address (oscdump). Deleted on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Netns(pub String);

impl Netns {
    /// None when not root or namespaces are unavailable (a failure under CI, a loud skip
    /// elsewhere: [`super::cannot_run`]).
    pub fn create(tag: &str) -> Option<Netns> {
        let root = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&root.stdout).trim() != "0" {
            super::cannot_run("needs root (network namespaces)");
            return None;
        }
        let name = format!("monmix-{tag}-{}", std::process::id());
        let ok = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        if !ok(&["netns", "add", &name]) {
            super::cannot_run("`ip netns add` failed (no iproute2 or no CAP_SYS_ADMIN)");
            return None;
        }
        let ns = Netns(name);
        assert!(ok(&["-n", &ns.0, "link", "set", "lo", "up"]));
        assert!(ok(&["-n", &ns.0, "link", "set", "lo", "multicast", "on"]));
        assert!(ok(&[
            "-n",
            &ns.0,
            "route",
            "add",
            "224.0.0.0/4",
            "dev",
            "lo"
        ]));
        Some(ns)
    }

    /// `ip netns exec NS program args...`, stdout piped.
    pub fn spawn(&self, program: &str, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.0, program])
            .args(args)
            .env("MONMIX_LOG", "info,mdns_sd=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn in netns")
    }

    pub fn output(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.0, program])
            .args(args)
            .output()
            .expect("run in netns")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A child killed and reaped on drop.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child's stdout, line by line, on a channel.
pub fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().expect("piped stdout");
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

/// Reads lines (echoing them) until `pred` holds or `t` passes.
pub fn wait_for(
    rx: &mpsc::Receiver<String>,
    t: Duration,
    mut pred: impl FnMut(&str) -> bool,
) -> bool {
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

/// Starts `monmix serve` in the namespace; returns it with its HTTP and OSC addresses.
pub fn serve(ns: &Netns, extra: &[&str]) -> (Kill, mpsc::Receiver<String>, String, String) {
    let mut server = Kill(
        ns.spawn(
            env!("CARGO_BIN_EXE_monmix"),
            &[
                &["serve", "--input", "tones", "--channels", "8", "--no-qr"],
                extra,
            ]
            .concat(),
        ),
    );
    let rx = lines(&mut server.0);
    let (mut http, mut osc) = (String::new(), String::new());
    assert!(
        wait_for(&rx, Duration::from_secs(30), |l| {
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
    (server, rx, http, osc)
}
