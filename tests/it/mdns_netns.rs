//! mDNS inside a network namespace this test creates (only `lo`, multicast on): nothing
//! is ever sent on a real interface. `monmix discover` finds the three services with the
//! right TXT and ports; after SIGTERM the goodbye packets remove them.
//! Skips (loudly) when not root or without `ip`.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::netns::{lines, serve, wait_for, Kill, Netns};

#[test]
fn discover_finds_the_three_services_and_goodbye_removes_them() {
    let Some(ns) = Netns::create("mdns") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("monmix.toml");
    std::fs::write(
        &cfg,
        "[server]\nname = \"Stage Left\"\n[mdns]\nhost_name = \"monmix-test\"\n",
    )
    .unwrap();
    let state = dir.path().join("state.json");
    let (mut server, _srv, http, osc) = serve(
        &ns,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--http",
            "0.0.0.0:0",
            "--osc",
            "0.0.0.0:0",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    let http_port = http.rsplit(':').next().unwrap().to_string();
    let osc_port = osc.rsplit(':').next().unwrap().to_string();

    let mut browser = Kill(ns.spawn(
        env!("CARGO_BIN_EXE_monmix"),
        &[
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
        ],
    ));
    let rx = lines(&mut browser.0);
    let mut seen = std::collections::BTreeMap::new();
    wait_for(&rx, Duration::from_secs(15), |l| {
        if let Some(rest) = l.strip_prefix("resolved\t") {
            let fullname = rest.split('\t').next().unwrap().to_string();
            seen.insert(fullname, rest.to_string());
        }
        seen.len() >= 3
    });
    let monmix = seen
        .get("Stage Left._monmix._tcp.local.")
        .unwrap_or_else(|| panic!("_monmix._tcp not found: {seen:?}"));
    for want in [
        format!("http://127.0.0.1:{http_port}/"),
        "host=monmix-test.local.".into(),
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
    let page = seen
        .get("Stage Left._http._tcp.local.")
        .expect("_http._tcp found");
    assert!(page.contains(&format!("port={http_port}")), "{page}");
    let surf = seen
        .get("Stage Left._osc._udp.local.")
        .expect("_osc._udp found");
    assert!(surf.contains(&format!("port={osc_port}")), "{surf}");

    // SIGTERM: goodbye packets remove all three.
    let st = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
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
fn no_mdns_or_a_loopback_listener_announces_nothing() {
    let Some(ns) = Netns::create("nomdns") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s1 = dir.path().join("a.json");
    let s2 = dir.path().join("b.json");
    let any = ["--http", "0.0.0.0:0", "--osc", "0.0.0.0:0"];
    let (_a, _rx, _, _) = serve(
        &ns,
        &[&["--no-mdns", "--state", s1.to_str().unwrap()], &any[..]].concat(),
    );
    let lo = ["--http", "127.0.0.1:0", "--osc", "127.0.0.1:0"];
    let (_b, _rx2, _, _) = serve(&ns, &[&["--state", s2.to_str().unwrap()], &lo[..]].concat());
    let t = Instant::now();
    let out = ns.output(
        env!("CARGO_BIN_EXE_monmix"),
        &["discover", "--timeout", "2"],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no monmix server found"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(6));
}
