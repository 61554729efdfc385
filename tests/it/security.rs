//! The security table of RELIABILITY.md, the rows not covered elsewhere: a foreign `Host`
//! (DNS rebinding), slow and silent sockets (slowloris) and the connection caps, a
//! performer's token against another mix over WHEP, a performer's OSC surface against
//! another mix, and OSC from a source outside `osc.allow` (from a network-namespace
//! address). Every case runs against a real `monmix serve` process over real sockets.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, Ws};
use rosc::{OscMessage, OscPacket, OscType};
use serde_json::{json, Value};

fn write_config(dir: &Path, extra: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("monmix.toml"),
        format!(
            "{extra}\n[audio]\nchannel_names = [\"Kick\", \"Snare\", \"Bass\", \"Keys\"]\n\
             [security]\nadmin_pin = \"{}\"\n",
            common::ADMIN_PIN
        ),
    )
    .unwrap();
}

/// One request on a fresh connection (`Connection: close`); returns (status, body).
fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn get(addr: SocketAddr, path: &str, host: &str) -> u16 {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
    .0
}

/// A counter from `/metrics`, through the shared reader.
async fn metric(addr: SocketAddr, name: &str) -> u64 {
    common::churn::must(&common::churn::metrics(addr).await, name) as u64
}

async fn new_client(server: &Server, name: &str) -> (Ws, String, String) {
    let mut ws = Ws::connect(&server.ws_url()).await;
    let w = ws.hello(json!({ "name": name })).await;
    let id = w["client_id"].as_str().unwrap().to_string();
    let token = w["token"].as_str().unwrap().to_string();
    (ws, id, token)
}

#[test]
fn a_foreign_host_is_refused_on_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let a = server.addr;
    let port = a.port();
    let evil = format!("evil.example:{port}");
    for path in [
        "/",
        "/engineer",
        "/api/status",
        "/metrics",
        "/healthz",
        "/app.css",
    ] {
        assert_eq!(get(a, path, &evil), 421, "{path} for {evil}");
        assert_eq!(get(a, path, &format!("127.0.0.1:{port}")), 200, "{path}");
    }
    for ok in [
        format!("localhost:{port}"),
        format!("monmix.local:{port}"),
        format!("MONMIX.LOCAL.:{port}"),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(get(a, "/healthz", &ok), 200, "{ok}");
    }
    for bad in [
        format!("monmix.local.evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        "localhost:notaport".to_string(),
    ] {
        assert_eq!(get(a, "/healthz", &bad), 421, "{bad}");
    }
    // DNS rebinding: the page's Origin and Host agree (both the attacker's name), which
    // the Origin check alone would let through.
    let upgrade = |host: &str| {
        http(
            a,
            &format!(
                "GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n\
                 Upgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ),
        )
        .0
    };
    assert_eq!(upgrade(&evil), 421);
    // The same request by the server's own address upgrades (then the server waits for a
    // hello; our read ends at its handshake timeout or when the 101 arrives: the status
    // line is all we read).
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let host = format!("127.0.0.1:{port}");
    s.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut first = [0u8; 12];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 101");
    let (status, _) = http(
        a,
        &format!(
            "POST /whep/x HTTP/1.1\r\nHost: {evil}\r\nContent-Type: application/sdp\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\nv="
        ),
    );
    assert_eq!(status, 421);
}

/// Reads until the server closes the socket; returns how long that took (None: still open
/// after `limit`, or the server answered instead of closing).
fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 512];
    while t0.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(t0.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(t0.elapsed()),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_sockets_are_cut_off_and_caps_hold() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "[server]\nheader_timeout_secs = 1.5\nrequest_timeout_secs = 2.0\nmax_connections_per_ip = 24",
    );
    let server = Server::start(dir.path(), &[]);
    let a = server.addr;
    let (_ws, id, token) = new_client(&server, "Ana").await;

    // Slowloris: 16 sockets trickle one header byte every 200 ms, for ever.
    let trickle: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(a).unwrap();
                s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                    .unwrap();
                let t0 = Instant::now();
                s.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let mut buf = [0u8; 256];
                while t0.elapsed() < Duration::from_secs(8) {
                    if s.write_all(b"a").is_err() {
                        return Some(t0.elapsed());
                    }
                    match s.read(&mut buf) {
                        Ok(0) => return Some(t0.elapsed()),
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => return Some(t0.elapsed()),
                    }
                }
                None
            })
        })
        .collect();
    // While they hang on, the server answers everyone else at once.
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    assert_eq!(get(a, "/healthz", "127.0.0.1"), 200);
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    for t in trickle {
        let cut = t.join().unwrap();
        let cut = cut.expect("a trickling socket was still open after 8 s");
        assert!(cut < Duration::from_secs(4), "cut after {cut:?}");
    }

    // A silent socket, and an idle keep-alive socket after one request, are closed too.
    let mut silent = TcpStream::connect(a).unwrap();
    let cut = closed_within(&mut silent, Duration::from_secs(6)).expect("silent socket open");
    assert!(
        cut >= Duration::from_millis(1000),
        "closed too early: {cut:?}"
    );
    let mut idle = TcpStream::connect(a).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let cut = closed_within(&mut idle, Duration::from_secs(6)).expect("idle socket open");
    assert!(cut < Duration::from_secs(4), "{cut:?}");

    // A trickled body: the request deadline answers 408 and nothing is created.
    let mut body = TcpStream::connect(a).unwrap();
    body.write_all(
        format!(
            "POST /whep/{id} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/sdp\r\nContent-Length: 5000\r\n\r\nv=0\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let t0 = Instant::now();
    body.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while t0.elapsed() < Duration::from_secs(6) && !got.ends_with(b"\r\n\r\n") {
        let _ = body.write_all(b"a=x\r\n");
        match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "got {text:?}");
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());

    // The per-address cap: 24 open sockets, the 25th is closed at once, counted, and the
    // server serves again when the holders go.
    let refused_before = metric(a, "monmix_http_connections_refused_total").await;
    let holders: Vec<TcpStream> = (0..24).map(|_| TcpStream::connect(a).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(a).unwrap();
    let cut = closed_within(&mut extra, Duration::from_secs(1)).expect("25th socket kept");
    assert!(cut < Duration::from_millis(900), "{cut:?}");
    drop(holders);
    std::thread::sleep(Duration::from_millis(300));
    assert!(metric(a, "monmix_http_connections_refused_total").await > refused_before);
    assert_eq!(get(a, "/healthz", "127.0.0.1"), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_performer_token_opens_its_own_mix_only_over_whep() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (_a, a_id, a_token) = new_client(&server, "Ana").await;
    let (_b, _b_id, b_token) = new_client(&server, "Bo").await;
    let post = |token: Option<&str>| {
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        http(
            server.addr,
            &format!(
                "POST /whep/{a_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\
                 Content-Type: application/sdp\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot sdp\r\n"
            ),
        )
        .0
    };
    assert_eq!(post(Some(&b_token)), 401, "Bo's token on Ana's mix");
    assert_eq!(post(Some("0123456789abcdef0123456789abcdef")), 401);
    assert_eq!(post(None), 401);
    // Ana's own token passes the check (and the garbage offer is refused after it).
    assert_eq!(post(Some(&a_token)), 400);
    assert_eq!(metric(server.addr, "monmix_stream_listeners").await, 0);
}

fn osc_send(sock: &UdpSocket, to: SocketAddr, addr: &str, args: Vec<OscType>) {
    let p = OscPacket::Message(OscMessage {
        addr: addr.into(),
        args,
    });
    sock.send_to(&rosc::encoder::encode(&p).unwrap(), to)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_performer_osc_surface_changes_its_own_mix_only() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "[[osc.performer]]\nsource = \"127.0.0.1\"\nmix = \"Ana\"",
    );
    let server = Server::start(dir.path(), &[]);
    let osc = server.osc.expect("osc address");
    let (mut ana, _, _) = new_client(&server, "Ana").await;
    let (mut bo, _, _) = new_client(&server, "Bo").await;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();

    osc_send(&sock, osc, "/mix/Bo/ch/1/gain", vec![OscType::Float(0.25)]);
    osc_send(&sock, osc, "/mix/2/ch/2/mute", vec![OscType::Int(1)]);
    osc_send(&sock, osc, "/mix/Ana/ch/1/gain", vec![OscType::Float(0.5)]);
    // Ana's change arrives; Bo hears of nothing.
    let m = ana.recv_type("param_sync").await;
    assert_eq!(
        (m["param"].as_str(), m["channel"].as_u64()),
        (Some("gain"), Some(0)),
        "{m}"
    );
    assert_eq!(m["value"], 0.5, "{m}");
    if let Some(m) = bo.recv_timeout(Duration::from_millis(500)).await {
        assert_ne!(m["type"], "param_sync", "Bo's mix changed: {m}");
    }
    assert_eq!(
        metric(
            server.addr,
            "monmix_osc_dropped_total{reason=\"forbidden\"}"
        )
        .await,
        2
    );
    // Reading another mix stays allowed.
    osc_send(&sock, osc, "/mix/Bo/ch/1/gain", vec![]);
    let mut buf = [0u8; 1024];
    let (n, _) = sock.recv_from(&mut buf).expect("query answered");
    let (_, p) = rosc::decoder::decode_udp(&buf[..n]).unwrap();
    match p {
        OscPacket::Message(m) => {
            assert_eq!(m.addr, "/mix/Bo/ch/1/gain");
            assert_eq!(m.args, vec![OscType::Float(1.0)], "Bo's gain unchanged");
        }
        other => panic!("{other:?}"),
    }
    let state: Value = {
        drop((ana, bo));
        server.terminate();
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap())
            .unwrap()
    };
    let gains: Vec<_> = state["channels_state"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| (c["name"].clone(), c["gains"]["0"].clone()))
        .collect();
    assert!(gains.contains(&(json!("Ana"), json!(0.5))), "{gains:?}");
    assert!(!gains.contains(&(json!("Bo"), json!(0.25))), "{gains:?}");
}

/// OSC from an address outside `osc.allow` is dropped; the same message from an allowed
/// address applies. Both senders are real sockets in a network namespace: the namespace's
/// `lo` carries 127.0.0.1 (allowed) and 10.77.0.2 (not), and liblo's `oscsend` sends from
/// the address it sends to.
#[test]
fn osc_from_a_source_outside_the_allow_list_is_dropped() {
    use common::netns::{serve, Netns};
    if std::process::Command::new("oscsend").output().is_err() {
        common::cannot_run("oscsend not installed (scripts/setup test installs liblo-tools)");
        return;
    }
    let Some(ns) = Netns::create("oscdeny") else {
        return;
    };
    assert!(ns
        .output("ip", &["addr", "add", "10.77.0.2/32", "dev", "lo"])
        .status
        .success());
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed_channels_state.json"),
        &state,
    )
    .unwrap();
    let cfg = dir.path().join("monmix.toml");
    std::fs::write(&cfg, "[osc]\nallow = [\"127.0.0.0/8\"]\n").unwrap();
    let before: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let (server, _rx, _http, _osc) = serve(
        &ns,
        &[
            "--no-mdns",
            "--config",
            cfg.to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
            "--osc",
            "0.0.0.0:9000",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    let oscsend = |to: &str, args: &[&str]| {
        let out = ns.output("oscsend", &[&[to, "9000"], args].concat());
        assert!(out.status.success(), "oscsend {args:?}");
    };
    oscsend("10.77.0.2", &["/mix/1/ch/2/gain", "f", "0.125"]);
    oscsend("127.0.0.1", &["/mix/1/ch/3/gain", "f", "0.375"]);
    std::thread::sleep(Duration::from_millis(300));
    let st = std::process::Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let mut server = server;
    assert!(server.0.wait().unwrap().success());
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let g = |v: &Value, ch: &str| v["channels_state"]["web-abc123"]["gains"][ch].clone();
    assert_eq!(
        g(&after, "1"),
        g(&before, "1"),
        "denied source changed ch 2"
    );
    assert_ne!(g(&before, "1"), json!(0.125));
    assert_eq!(g(&after, "2"), json!(0.375), "allowed source did not apply");
}
