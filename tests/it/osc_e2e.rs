//! OSC against a real server on 127.0.0.1 (in this process): a rosc peer in the test; and
//! liblo's `oscsend`/`oscdump`, an independent implementation, against a `monmix serve`
//! process in a network namespace. WS sessions observe the state.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::in_process::InProcess;
use common::{Endpoint, Ws, ADMIN_PIN};
use rosc::{OscMessage, OscPacket, OscType};
use serde_json::{json, Value};
use tokio::net::UdpSocket;

fn config(dir: &Path, osc: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("monmix.toml"),
        format!(
            "[audio]\nchannel_names = [\"Kick\", \"Snare\", \"Bass\", \"Keys\"]\n\
             [security]\nadmin_pin = \"{ADMIN_PIN}\"\n[osc]\n{osc}\n"
        ),
    )
    .unwrap();
}

struct Peer {
    sock: UdpSocket,
    server: SocketAddr,
}

impl Peer {
    async fn new(server: &impl Endpoint) -> Peer {
        Peer {
            sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            server: server.osc().expect("OSC is on"),
        }
    }

    async fn send(&self, addr: &str, args: Vec<OscType>) {
        let b = rosc::encoder::encode(&OscPacket::Message(OscMessage {
            addr: addr.into(),
            args,
        }))
        .unwrap();
        self.sock.send_to(&b, self.server).await.unwrap();
    }

    async fn send_raw(&self, b: &[u8]) {
        self.sock.send_to(b, self.server).await.unwrap();
    }

    /// Next message (bundles flattened) within `t`.
    async fn recv(&self, t: Duration) -> Option<OscMessage> {
        let mut buf = vec![0u8; 65536];
        let (n, _) = tokio::time::timeout(t, self.sock.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        let decoded = rosc::decoder::decode_udp(&buf[..n])
            .unwrap_or_else(|e| panic!("server sent invalid OSC ({e}): {:?}", &buf[..n.min(200)]));
        match decoded.1 {
            OscPacket::Message(m) => Some(m),
            OscPacket::Bundle(_) => panic!("unexpected bundle"),
        }
    }

    /// Skips messages until one with `addr` arrives (meters, other feedback...).
    async fn recv_addr(&self, addr: &str, t: Duration) -> Option<OscMessage> {
        let deadline = Instant::now() + t;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let m = self.recv(left).await?;
            if m.addr == addr {
                return Some(m);
            }
        }
    }

    /// Asks and waits for the answer. UDP may lose the question (right after a burst the
    /// server's receive buffer can be full), so ask again like a surface would: up to 5
    /// times, 1 s apart.
    async fn query(&self, addr: &str) -> Vec<OscType> {
        self.query_tries(addr).await.0
    }

    /// The reply, and how many requests it took (UDP: a full socket buffer drops some).
    async fn query_tries(&self, addr: &str) -> (Vec<OscType>, u64) {
        for tries in 1..=5 {
            self.send(addr, vec![]).await;
            if let Some(m) = self.recv_addr(addr, Duration::from_secs(1)).await {
                return (m.args, tries);
            }
        }
        panic!("no reply to {addr} after 5 tries")
    }

    /// Reads everything arriving within `t`; returns it, meters excluded.
    async fn drain(&self, t: Duration) -> Vec<OscMessage> {
        let deadline = Instant::now() + t;
        let mut v = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.recv(left).await {
                Some(m) if !m.addr.contains("meters") => v.push(m),
                Some(_) => {}
                None => break,
            }
        }
        v
    }
}

async fn new_client(server: &impl Endpoint, name: &str) -> (Ws, String) {
    let mut ws = Ws::connect(&server.ws_url()).await;
    let w = ws.hello(json!({"name": name})).await;
    let id = w["client_id"].as_str().unwrap().to_string();
    ws.send(json!({"type":"subscribe","channels":[0,1,2,3]}))
        .await;
    assert_eq!(ws.recv_type("subscribed").await["type"], "subscribed");
    (ws, id)
}

async fn engineer(server: &impl Endpoint) -> Ws {
    let mut ws = Ws::connect(&server.ws_url()).await;
    let w = ws.hello(json!({"admin_pin": ADMIN_PIN})).await;
    assert_eq!(w["role"], "engineer");
    ws
}

async fn mix_of(eng: &mut Ws, id: &str) -> Value {
    eng.send(json!({"type":"watch_client","client_id": id}))
        .await;
    loop {
        let m = eng.recv().await;
        if m["type"] == "client_mix" && m["client_id"] == id {
            return m["mix"].clone();
        }
    }
}

/// A counter from `/metrics` (the shared reader; a missing one is a failure).
fn metric(text: &str, name: &str) -> u64 {
    common::churn::must(text, name) as u64
}

/// Datagrams the kernel dropped on the server's UDP socket because its receive buffer was
/// full (the `drops` column of `/proc/net/udp`, IPv4 loopback only).
fn kernel_drops(server: SocketAddr) -> u64 {
    let SocketAddr::V4(v4) = server else {
        panic!("IPv4 server expected: {server}")
    };
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(v4.ip().octets()),
        v4.port()
    );
    let table = std::fs::read_to_string("/proc/net/udp").expect("read /proc/net/udp");
    table
        .lines()
        .find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.get(1) == Some(&local.as_str())).then(|| cols.last()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no socket {local} in /proc/net/udp"))
}

fn f(v: f32) -> OscType {
    OscType::Float(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_query_dump_info_by_every_mix_form() {
    let dir = tempfile::tempdir().unwrap();
    let server = InProcess::start(dir.path()).await;
    let (mut ana, ana_id) = new_client(&server, "Ana").await;
    let (_ben, ben_id) = new_client(&server, "Ben").await;
    let peer = Peer::new(&server).await;

    // Position, name (any case) and id all reach the same mix, and Ana's phone is told.
    for (m, id) in [("1", &ana_id), ("ben", &ben_id), (ana_id.as_str(), &ana_id)] {
        peer.send(&format!("/mix/{m}/ch/2/gain"), vec![f(0.5)])
            .await;
        peer.send(&format!("/mix/{m}/ch/2/pan"), vec![f(0.25)])
            .await;
        peer.send(&format!("/mix/{m}/ch/3/mute"), vec![OscType::Int(1)])
            .await;
        peer.send(&format!("/mix/{m}/ch/4/solo"), vec![f(1.0)])
            .await;
        peer.send(&format!("/mix/{m}/ch/5/on"), vec![OscType::Int(1)])
            .await;
        peer.send(&format!("/mix/{m}/master/gain"), vec![f(0.75)])
            .await;
        assert_eq!(
            peer.query(&format!("/mix/{m}/ch/2/gain")).await,
            vec![f(0.5)]
        );
        assert_eq!(
            peer.query(&format!("/mix/{m}/ch/2/pan")).await,
            vec![f(0.25)]
        );
        assert_eq!(
            peer.query(&format!("/mix/{m}/ch/3/mute")).await,
            vec![OscType::Int(1)]
        );
        assert_eq!(
            peer.query(&format!("/mix/{m}/ch/4/solo")).await,
            vec![OscType::Int(1)]
        );
        assert_eq!(
            peer.query(&format!("/mix/{m}/ch/5/on")).await,
            vec![OscType::Int(1)]
        );
        assert_eq!(
            peer.query(&format!("/mix/{m}/master/gain")).await,
            vec![f(0.75)]
        );
        let _ = id;
    }
    // Ana's own session got param_sync for OSC changes (origin is not hers).
    let sync = ana.recv_type("param_sync").await;
    assert_eq!(sync["client_id"], ana_id.as_str());
    assert_eq!(sync["param"], "gain");
    assert_eq!(sync["value"], 0.5);

    // Fader taper round trip through the server.
    for pos in [1.0f32, 0.75, 0.5, 0.3, 0.05, 0.01] {
        peer.send("/mix/Ana/ch/1/fader", vec![f(pos)]).await;
        let OscType::Float(back) = peer.query("/mix/Ana/ch/1/fader").await[0] else {
            panic!()
        };
        assert!((back - pos).abs() < 1e-4, "{pos} -> {back}");
    }
    peer.send("/mix/1/ch/1/fader", vec![f(0.75)]).await;
    assert_eq!(peer.query("/mix/1/ch/1/gain").await, vec![f(1.0)]);
    assert_eq!(peer.query("/mix/1/ch/1/db").await, vec![f(0.0)]);
    peer.send("/mix/1/ch/1/db", vec![f(-10.0)]).await;
    let OscType::Float(p) = peer.query("/mix/1/ch/1/fader").await[0] else {
        panic!()
    };
    assert!((p - 0.5).abs() < 1e-4);

    // The state is what a WS engineer sees, and what was persisted.
    let mut eng = engineer(&server).await;
    let mix = mix_of(&mut eng, &ben_id).await;
    assert_eq!(mix["gains"]["1"], 0.5);
    assert_eq!(mix["mutes"]["2"], true);
    assert_eq!(mix["solos"]["3"], true);
    assert_eq!(mix["master_gain"], 0.75);
    assert!(mix["channels"].as_array().unwrap().contains(&json!(4)));

    // Dump: every value, ending with /dump/end.
    peer.send("/mix/2/dump", vec![]).await;
    let mut got = Vec::new();
    loop {
        let m = peer.recv(Duration::from_secs(2)).await.expect("dump");
        if m.addr == "/mix/2/dump/end" {
            break;
        }
        got.push(m);
    }
    assert!(got
        .iter()
        .any(|m| m.addr == "/mix/2/name" && m.args == vec![OscType::String("Ben".into())]));
    assert!(got
        .iter()
        .any(|m| m.addr == "/mix/2/ch/2/gain" && m.args == vec![f(0.5)]));
    assert_eq!(
        got.iter()
            .filter(|m| m.addr.ends_with("/gain") && m.addr.contains("/ch/"))
            .count(),
        8
    );

    let info = peer.query("/info").await;
    assert_eq!(info[0], OscType::String("monmix".into()));
    assert_eq!(info[1], OscType::String(env!("CARGO_PKG_VERSION").into()));
    assert_eq!(info[2], OscType::Int(8));
    assert_eq!(info[3], OscType::Int(2));

    // TouchOSC aliases drive mix 1.
    peer.send("/1/toggle2", vec![f(1.0)]).await;
    assert_eq!(peer.query("/mix/1/ch/2/mute").await, vec![OscType::Int(1)]);
    peer.send("/1/fader2", vec![f(0.5)]).await;
    let OscType::Float(p) = peer.query("/mix/1/ch/2/fader").await[0] else {
        panic!()
    };
    assert!((p - 0.5).abs() < 1e-4);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_feedback_no_echo_meters_and_lease_expiry() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), "lease_secs = 1.0\nmeter_hz = 20");
    let server = InProcess::start(dir.path()).await;
    let (mut ana, ana_id) = new_client(&server, "Ana").await;
    let surface = Peer::new(&server).await;
    let other = Peer::new(&server).await;

    surface.send("/subscribe", vec![]).await;
    assert_eq!(
        surface
            .recv_addr("/subscribe", Duration::from_secs(2))
            .await
            .unwrap()
            .args,
        vec![f(1.0)]
    );
    other
        .send("/subscribe", vec![OscType::String("ana".into())])
        .await;
    assert!(other
        .recv_addr("/subscribe", Duration::from_secs(2))
        .await
        .is_some());
    other.drain(Duration::from_millis(200)).await;

    // Meters at ~20 Hz: count them over 0.5 s (after reading what queued meanwhile).
    surface.drain(Duration::from_millis(120)).await;
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed() < Duration::from_millis(500) {
        if let Some(m) = surface.recv(Duration::from_millis(100)).await {
            if m.addr == "/mix/1/meters" {
                assert_eq!(m.args.len(), 2);
                n += 1;
            }
        }
    }
    assert!((7..=13).contains(&n), "{n} meter messages in 0.5 s");

    // A WS change reaches the surface within 50 ms.
    let mut worst = Duration::ZERO;
    for k in 0..10 {
        let g = 0.1 + k as f64 * 0.05;
        let t = Instant::now();
        ana.send(json!({"type":"update_gain","channel":0,"gain":g}))
            .await;
        let m = surface
            .recv_addr("/mix/1/ch/1/gain", Duration::from_secs(1))
            .await
            .expect("feedback");
        worst = worst.max(t.elapsed());
        assert_eq!(m.args, vec![f(g as f32)]);
    }
    assert!(worst < Duration::from_millis(50), "feedback took {worst:?}");
    // Also the fader form for TouchOSC (mix 1 is the TouchOSC mix).
    ana.send(json!({"type":"toggle_mute","channel":1,"muted":true}))
        .await;
    assert_eq!(
        surface
            .recv_addr("/1/toggle2", Duration::from_secs(1))
            .await
            .unwrap()
            .args,
        vec![OscType::Int(1)]
    );

    // No echo: the surface's own change goes to the phone and the other surface only.
    // (Renew both leases first: they are 1 s in this test.)
    surface.send("/subscribe", vec![]).await;
    other
        .send("/subscribe", vec![OscType::String("ana".into())])
        .await;
    surface.drain(Duration::from_millis(100)).await;
    other.drain(Duration::from_millis(100)).await;
    surface.send("/mix/1/ch/3/pan", vec![f(-0.75)]).await;
    let sync = ana.recv_type("param_sync").await;
    assert_eq!(
        (sync["param"].as_str(), sync["value"].as_f64()),
        (Some("pan"), Some(-0.75))
    );
    assert_eq!(
        other
            .recv_addr("/mix/1/ch/3/pan", Duration::from_secs(1))
            .await
            .unwrap()
            .args,
        vec![f(-0.75)]
    );
    let echoed = surface.drain(Duration::from_millis(300)).await;
    assert!(
        echoed.iter().all(|m| m.addr != "/mix/1/ch/3/pan"),
        "echoed: {echoed:?}"
    );

    // Lease: renewing keeps feedback; after 1 s without renewal it stops.
    surface.send("/subscribe", vec![]).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    surface.drain(Duration::from_millis(50)).await;
    ana.send(json!({"type":"update_gain","channel":0,"gain":0.9}))
        .await;
    assert!(
        surface
            .recv_addr("/mix/1/ch/1/gain", Duration::from_millis(500))
            .await
            .is_none(),
        "feedback after expiry"
    );
    assert!(
        surface.recv(Duration::from_millis(200)).await.is_none(),
        "meters after expiry"
    );
    let m = common::churn::metrics(server.addr).await;
    assert_eq!(metric(&m, "monmix_osc_subscribers"), 0);
    let _ = ana_id;
}

fn nested(depth: usize) -> Vec<u8> {
    let mut inner = rosc::encoder::encode(&OscPacket::Message(OscMessage {
        addr: "/mix/1/ch/1/gain".into(),
        args: vec![f(0.1)],
    }))
    .unwrap();
    for _ in 0..depth {
        let mut b = b"#bundle\0\0\0\0\0\0\0\0\x01".to_vec();
        b.extend_from_slice(&(inner.len() as i32).to_be_bytes());
        b.extend_from_slice(&inner);
        inner = b;
    }
    inner
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_dropped_and_a_burst_is_survived() {
    let dir = tempfile::tempdir().unwrap();
    let server = InProcess::start(dir.path()).await;
    let (_ana, ana_id) = new_client(&server, "Ana").await;
    let peer = Peer::new(&server).await;
    let mut eng = engineer(&server).await;
    let before = mix_of(&mut eng, &ana_id).await;

    let enc = |a: &str, args: Vec<OscType>| {
        rosc::encoder::encode(&OscPacket::Message(OscMessage {
            addr: a.into(),
            args,
        }))
        .unwrap()
    };
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (vec![b'/'; 9000], "oversize"),
        (nested(5), "nesting"),
        (nested(400), "nesting"),
        (b"\x00\x01garbage".to_vec(), "malformed"),
        (enc("/mix/1/ch/1/volume", vec![f(1.0)]), "unknown_address"),
        (enc("/mix/7/ch/1/gain", vec![f(1.0)]), "unknown_mix"),
        (
            enc("/mix/1/ch/1/gain", vec![OscType::String("x".into())]),
            "bad_type",
        ),
        (enc("/mix/1/ch/1/gain", vec![f(f32::NAN)]), "out_of_range"),
        (enc("/mix/1/ch/1/gain", vec![f(3.0)]), "out_of_range"),
        (enc("/mix/1/ch/1/fader", vec![f(-0.5)]), "out_of_range"),
        (
            enc("/mix/1/ch/1/pan", vec![f(f32::INFINITY)]),
            "out_of_range",
        ),
        (enc("/mix/1/ch/99/gain", vec![f(1.0)]), "out_of_range"),
    ];
    let base = common::churn::metrics(server.addr).await;
    for (b, _) in &bad {
        peer.send_raw(b).await;
    }
    // The server is alive and answers.
    assert_eq!(peer.query("/info").await[3], OscType::Int(1));
    let m = common::churn::metrics(server.addr).await;
    for reason in [
        "oversize",
        "nesting",
        "malformed",
        "unknown_address",
        "unknown_mix",
        "bad_type",
        "out_of_range",
    ] {
        let name = format!("monmix_osc_dropped_total{{reason=\"{reason}\"}}");
        let want = bad.iter().filter(|(_, r)| *r == reason).count() as u64;
        assert_eq!(metric(&m, &name) - metric(&base, &name), want, "{reason}");
    }
    assert_eq!(mix_of(&mut eng, &ana_id).await, before, "state changed");

    // 10,000 datagrams as fast as the socket takes them: alive, counts plausible.
    let mid = common::churn::metrics(server.addr).await;
    let kernel_before = kernel_drops(peer.server);
    let good = enc("/mix/1/ch/2/gain", vec![f(0.5)]);
    let junk = enc("/mix/1/ch/2/gain", vec![f(9.0)]);
    let t = Instant::now();
    for k in 0..10_000 {
        peer.send_raw(if k % 2 == 0 { &good } else { &junk }).await;
        if k % 500 == 499 {
            tokio::task::yield_now().await;
        }
    }
    let sent_in = t.elapsed();
    let (info, tries) = peer.query_tries("/info").await;
    assert_eq!(info[0], OscType::String("monmix".into()));
    let m = common::churn::metrics(server.addr).await;
    let kernel_dropped = kernel_drops(peer.server) - kernel_before;
    let got = metric(&m, "monmix_osc_datagrams_total") - metric(&mid, "monmix_osc_datagrams_total");
    // How many reach the server depends on how busy the machine is (the kernel's socket
    // buffer holds ~150 datagrams); what must hold is that every datagram is either counted
    // by the server or dropped by the kernel: nothing vanishes inside monmix. The `/info`
    // queries are the only other datagrams in the window.
    assert_eq!(
        got + kernel_dropped,
        10_000 + tries,
        "counted {got}, kernel dropped {kernel_dropped}"
    );
    assert!(got > 150, "the server barely drained its socket: {got}");
    // Good and junk alternate, and the kernel drops whole runs, so about half of what
    // arrived was out of range.
    let out_of_range = metric(&m, "monmix_osc_dropped_total{reason=\"out_of_range\"}")
        - metric(&mid, "monmix_osc_dropped_total{reason=\"out_of_range\"}");
    let half = got / 2;
    assert!(
        out_of_range.abs_diff(half) <= half / 5 + 10,
        "out_of_range {out_of_range} of {got} received"
    );
    eprintln!(
        "burst: 10000 datagrams sent in {sent_in:?}, {got} counted by the server, \
         {kernel_dropped} dropped by the kernel"
    );
    assert_eq!(mix_of(&mut eng, &ana_id).await["gains"]["1"], 0.5);
}

/// liblo's tools are an independent OSC implementation. `oscdump` binds every address of
/// its network namespace, so this runs server and tools in a namespace of its own with
/// only `lo` (skips loudly when not root). The mix comes from a seed-format state file.
#[test]
fn liblo_oscsend_and_oscdump_interoperate() {
    use common::netns::{serve, Kill, Netns};
    if std::process::Command::new("oscsend").output().is_err()
        || std::process::Command::new("oscdump")
            .arg("-h")
            .output()
            .is_err()
    {
        common::cannot_run(
            "oscsend/oscdump not installed (scripts/setup test installs liblo-tools)",
        );
        return;
    }
    let Some(ns) = Netns::create("liblo") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed_channels_state.json"),
        &state,
    )
    .unwrap();
    let cfg = dir.path().join("monmix.toml");
    std::fs::write(&cfg, "[osc]\nreply_port = 9001\n").unwrap();
    let out_path = dir.path().join("oscdump.txt");
    let dump = Kill(
        std::process::Command::new("ip")
            .args(["netns", "exec", &ns.0, "oscdump", "-L", "9001"])
            .stdout(std::fs::File::create(&out_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let (server, _rx, _http, _osc) = serve(
        &ns,
        &[
            "--no-mdns",
            "--config",
            cfg.to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
            "--osc",
            "127.0.0.1:9000",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    let oscsend = |args: &[&str]| {
        let out = ns.output("oscsend", &[&["127.0.0.1", "9000"], args].concat());
        assert!(
            out.status.success(),
            "oscsend {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    oscsend(&["/mix/1/ch/2/gain", "f", "0.25"]);
    oscsend(&["/mix/web-abc123/ch/3/mute", "i", "0"]);
    oscsend(&["/mix/1/ch/2/gain"]);
    oscsend(&["/mix/1/ch/3/mute"]);
    oscsend(&["/info"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let t = std::fs::read_to_string(&out_path).unwrap_or_default();
        if t.contains("/info") || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(dump);
    assert!(
        text.contains("/mix/1/ch/2/gain f 0.25"),
        "oscdump saw: {text}"
    );
    assert!(text.contains("/mix/1/ch/3/mute i 0"), "oscdump saw: {text}");
    assert!(text.contains("/info ssii"), "oscdump saw: {text}");
    // The change is persisted (SIGTERM writes at once).
    let st = std::process::Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let mut server = server;
    assert!(server.0.wait().unwrap().success());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(v["channels_state"]["web-abc123"]["gains"]["1"], 0.25);
    assert_eq!(v["channels_state"]["web-abc123"]["mutes"]["2"], false);
}
