//! The WebSocket control plane against a real server on 127.0.0.1: the seed's flow, sync
//! between sessions, restart, bad input, engineer flows, Origin (in this process), SIGTERM
//! and kill -9 (a `monmix serve` process).

use crate::common;

use std::time::Duration;

use common::in_process::InProcess;
use common::{Endpoint, Server, Ws, ADMIN_PIN};
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Connects and says hello as a new client; returns (ws, client_id, token).
async fn new_client(server: &impl Endpoint, name: &str) -> (Ws, String, String) {
    let mut ws = Ws::connect(&server.ws_url()).await;
    let w = ws.hello(json!({"name": name})).await;
    assert_eq!(w["role"], "performer");
    let id = w["client_id"].as_str().unwrap().to_string();
    let token = w["token"].as_str().unwrap().to_string();
    (ws, id, token)
}

async fn engineer(server: &impl Endpoint) -> Ws {
    let mut ws = Ws::connect(&server.ws_url()).await;
    let w = ws.hello(json!({"admin_pin": ADMIN_PIN})).await;
    assert_eq!(w["role"], "engineer");
    assert!(w["client_id"].is_null());
    let c = ws.recv().await;
    assert_eq!(c["type"], "clients");
    ws
}

/// No message arrives within `t` (besides pings).
async fn silent(ws: &mut Ws, t: Duration) {
    if let Some(m) = ws.recv_timeout(t).await {
        panic!("unexpected message {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_flow_sync_and_restart() {
    let dir = tmp();
    let server = InProcess::start(dir.path()).await;
    let (mut a, id, token) = new_client(&server, "Ana").await;

    // welcome lists the configured channel names and the 48 kHz format.
    let mut probe = Ws::connect(&server.ws_url()).await;
    let w = probe.hello(json!({"client_id": id, "token": token})).await;
    assert_eq!(w["channels"][0], json!({"index": 0, "name": "Kick"}));
    assert_eq!(w["channels"][4]["name"], "Ch 5");
    assert_eq!(w["sample_rate"], 48000);
    assert_eq!(w["frame_ms"], 10.0);
    assert_eq!(w["mix"]["name"], "Ana");
    let mut b = probe; // second device of the same client

    a.send(json!({"type":"subscribe","channels":[0,1],"gains":{"0":0.8},"pans":{"1":-0.5}}))
        .await;
    let s = a.recv().await;
    assert_eq!(s["type"], "subscribed");
    assert_eq!(s["mix"]["channels"], json!([0, 1]));
    assert_eq!(s["mix"]["gains"]["0"], 0.8);
    assert_eq!(s["mix"]["pans"]["1"], -0.5);
    let sync = b.recv().await;
    assert_eq!(sync["type"], "param_sync");
    assert_eq!(sync["param"], "mix");

    a.send(json!({"type":"update_gain","channel":1,"gain":0.7}))
        .await;
    let ack = a.recv().await;
    assert_eq!(
        ack,
        json!({"type":"gain_updated","client_id":id,"channel":1,"gain":0.7})
    );
    let sync = b.recv().await;
    assert_eq!(
        sync,
        json!({"type":"param_sync","client_id":id,"param":"gain","channel":1,"value":0.7})
    );
    // never echoed to the sender
    silent(&mut a, Duration::from_millis(200)).await;

    for (msg, ack_ty, param) in [
        (
            json!({"type":"update_pan","channel":0,"pan":0.25}),
            "pan_updated",
            "pan",
        ),
        (
            json!({"type":"toggle_mute","channel":1,"muted":true}),
            "mute_updated",
            "mute",
        ),
        (
            json!({"type":"toggle_solo","channel":0,"soloed":true}),
            "solo_updated",
            "solo",
        ),
        (
            json!({"type":"update_master","gain":1.5}),
            "master_updated",
            "master",
        ),
        (
            json!({"type":"set_on","channel":3,"on":true}),
            "channels_updated",
            "channels",
        ),
        (json!({"type":"rename","name":"Ana G"}), "renamed", "name"),
    ] {
        a.send(msg).await;
        assert_eq!(a.recv().await["type"], ack_ty);
        assert_eq!(b.recv().await["param"], param);
    }
    let expected = json!({
        "channels":[0,1,3],"gains":{"0":0.8,"1":0.7},"pans":{"0":0.25,"1":-0.5},
        "mutes":{"1":true},"solos":{"0":true},"master_gain":1.5,"name":"Ana G"
    });
    drop(a);
    drop(b);

    // Restart: the mix comes back through hello + subscribe without channels.
    assert!(server.stop().await, "clean stop");
    let server = InProcess::start(dir.path()).await;
    let mut c = Ws::connect(&server.ws_url()).await;
    let w = c.hello(json!({"client_id": id, "token": token})).await;
    assert_eq!(w["client_id"], id.as_str());
    c.send(json!({"type":"subscribe"})).await;
    let r = c.recv().await;
    assert_eq!(r["type"], "auto_resubscribed");
    for k in [
        "channels",
        "gains",
        "pans",
        "mutes",
        "solos",
        "master_gain",
        "name",
    ] {
        assert_eq!(r["mix"][k], expected[k], "field {k} after restart: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_changes_nothing() {
    let dir = tmp();
    let server = InProcess::start(dir.path()).await;
    let (mut a, id, _token) = new_client(&server, "Bo").await;
    a.send(json!({"type":"subscribe","channels":[0,2],"gains":{"0":0.5}}))
        .await;
    let before = a.recv().await["mix"].clone();
    let (mut other, other_id, _) = new_client(&server, "Cy").await;
    drop(other.inner.close(None).await);

    let big = format!(r#"{{"type":"rename","name":"{}"}}"#, "x".repeat(1 << 20));
    let cases: Vec<(String, &str)> = vec![
        (
            r#"{"type":"update_gain","channel":0,"gain":-0.1}"#.into(),
            "out_of_range",
        ),
        (
            r#"{"type":"update_gain","channel":0,"gain":2.01}"#.into(),
            "out_of_range",
        ),
        (
            r#"{"type":"update_gain","channel":0,"gain":NaN}"#.into(),
            "bad_json",
        ),
        (
            r#"{"type":"update_gain","channel":0,"gain":1e309}"#.into(),
            "bad_json",
        ),
        (
            r#"{"type":"update_gain","channel":999,"gain":1}"#.into(),
            "unknown_channel",
        ),
        (
            r#"{"type":"update_gain","channel":-1,"gain":1}"#.into(),
            "unknown_channel",
        ),
        (
            r#"{"type":"update_pan","channel":0,"pan":1.5}"#.into(),
            "out_of_range",
        ),
        (r#"{"type":"update_gain","channel":0}"#.into(), "bad_json"),
        (
            r#"{"type":"update_gain","channel":"0","gain":1}"#.into(),
            "bad_json",
        ),
        (
            r#"{"type":"toggle_mute","channel":0,"muted":"yes"}"#.into(),
            "bad_json",
        ),
        (
            r#"{"type":"set_channels","channels":[0,64]}"#.into(),
            "unknown_channel",
        ),
        (r#"{"type":"rename","name":""}"#.into(), "out_of_range"),
        ("this is not json".into(), "bad_json"),
        (r#"{"no":"type"}"#.into(), "bad_json"),
        (r#"{"type":"launch_rockets"}"#.into(), "unknown_type"),
        (r#"{"type":"list_clients"}"#.into(), "forbidden"),
        (
            format!(
                r#"{{"type":"update_client_mix","client_id":"{other_id}","op":{{"type":"update_gain","channel":0,"gain":0.1}}}}"#
            ),
            "forbidden",
        ),
    ];
    for (text, code) in &cases {
        a.send_raw(text).await;
        let e = a.recv().await;
        assert_eq!(e["type"], "error", "{text} -> {e}");
        assert_eq!(e["code"], *code, "{text} -> {e}");
    }
    // 1 MiB: refused as too large; the socket is closed after the error.
    // The server may close while the 1 MiB is still going out: a failed send is fine.
    let _ = a
        .inner
        .send(tokio_tungstenite::tungstenite::Message::Text(big.into()))
        .await;
    let e = a.recv_timeout(Duration::from_secs(5)).await;
    if let Some(e) = e {
        assert_eq!(e["code"], "too_large", "{e}");
    }
    let mut a = Ws::connect(&server.ws_url()).await;
    let w = a.hello(json!({"client_id": id, "token": _token})).await;
    assert_eq!(w["mix"]["gains"], before["gains"]);
    assert_eq!(w["mix"]["channels"], before["channels"]);
    assert_eq!(w["mix"]["name"], "Bo");

    // Wrong token for an existing client.
    let mut x = Ws::connect(&server.ws_url()).await;
    x.send(
        json!({"type":"hello","client_id": other_id, "token":"00000000000000000000000000000000"}),
    )
    .await;
    assert_eq!(x.recv().await["code"], "unauthorized");
    x.send(json!({"type":"update_gain","channel":0,"gain":0.1}))
        .await;
    assert_eq!(x.recv().await["code"], "unauthorized");

    // A burst of 1000 valid messages: at most ~200/s are applied, the rest is refused
    // with one rate_limited error; the server stays up and consistent.
    let mut burst = String::new();
    for i in 0..1000 {
        burst = format!(
            r#"{{"type":"update_gain","channel":2,"gain":{}}}"#,
            (i % 100) as f64 / 100.0
        );
        a.send_raw(&burst).await;
    }
    let _ = burst;
    let mut acks = 0;
    let mut limited = 0;
    while let Some(m) = a.recv_timeout(Duration::from_millis(500)).await {
        match m["type"].as_str().unwrap() {
            "gain_updated" => acks += 1,
            "error" => {
                assert_eq!(m["code"], "rate_limited");
                limited += 1
            }
            _ => {}
        }
    }
    // Burst allowance is 200 tokens, minus what the earlier cases used, plus the refill
    // (200/s) while the burst was being written.
    assert!((150..=400).contains(&acks), "acks {acks}");
    assert!(limited >= 1, "no rate_limited error");
    // Still serving.
    a.send(json!({"type":"ping","t":1})).await;
    assert_eq!(a.recv_type("pong").await["t"], 1.0);

    // The stored state holds none of the refused values.
    let (mut eng, _) = (engineer(&server).await, ());
    eng.send(json!({"type":"watch_client","client_id": id}))
        .await;
    let m = eng.recv_type("client_mix").await;
    assert_eq!(m["mix"]["gains"]["0"], 0.5);
    assert_eq!(m["mix"]["pans"], before["pans"]);
    assert_eq!(m["mix"]["channels"], before["channels"]);
    let _ = other_id;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origin_is_refused_before_upgrade() {
    let dir = tmp();
    let server = InProcess::start(dir.path()).await;
    let mut req = server.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("Origin", "http://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    // Same-origin page is fine.
    let mut req = server.ws_url().into_client_request().unwrap();
    let origin = format!("http://{}", server.addr);
    req.headers_mut().insert("Origin", origin.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engineer_edits_reorders_and_pin_locks_out() {
    let dir = tmp();
    let server = InProcess::start(dir.path()).await;
    let (mut ana, ana_id, _) = new_client(&server, "Ana").await;
    let (_bo, bo_id, _) = new_client(&server, "Bo").await;
    let mut eng = engineer(&server).await;

    eng.send(json!({"type":"list_clients"})).await;
    let c = eng.recv_type("clients").await;
    let ids: Vec<&str> = c["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ana_id.as_str(), bo_id.as_str()]);
    assert_eq!(c["clients"][0]["online"], true);

    eng.send(json!({"type":"update_client_mix","client_id": ana_id,
        "op":{"type":"update_gain","channel":2,"gain":1.25}}))
        .await;
    let ack = eng.recv_type("gain_updated").await;
    assert_eq!(ack["client_id"], ana_id.as_str());
    let sync = ana.recv_type("param_sync").await;
    assert_eq!(sync["param"], "gain");
    assert_eq!(sync["channel"], 2);
    assert_eq!(sync["value"], 1.25);

    // The performer's own change reaches the watching engineer.
    ana.send(json!({"type":"update_pan","channel":2,"pan":-1.0}))
        .await;
    ana.recv_type("pan_updated").await;
    let sync = eng.recv_type("param_sync").await;
    assert_eq!(sync["client_id"], ana_id.as_str());
    assert_eq!(sync["value"], -1.0);

    eng.send(json!({"type":"reorder_clients","order":[bo_id, ana_id]}))
        .await;
    let c = eng.recv_type("clients").await;
    assert_eq!(c["clients"][0]["client_id"], bo_id.as_str());

    // Persisted order survives a restart.
    drop(ana);
    assert!(server.stop().await, "clean stop");
    let server = InProcess::start(dir.path()).await;
    let state = server.state_json();
    assert_eq!(state["client_order"], json!([bo_id, ana_id]));
    assert_eq!(state["channels_state"][&ana_id]["gains"]["2"], 1.25);

    // PIN lockout: 5 wrong tries, then even the right PIN is rate limited.
    for _ in 0..5 {
        let mut w = Ws::connect(&server.ws_url()).await;
        w.send(json!({"type":"hello","admin_pin":"0000"})).await;
        assert_eq!(w.recv().await["code"], "unauthorized");
    }
    let mut w = Ws::connect(&server.ws_url()).await;
    w.send(json!({"type":"hello","admin_pin": ADMIN_PIN})).await;
    assert_eq!(w.recv().await["code"], "rate_limited");
    // An engineer token still works (different credential).
    let mut w = Ws::connect(&server.ws_url()).await;
    let welcome = w
        .hello(json!({"engineer_token":"eng-token-0123456789"}))
        .await;
    assert_eq!(welcome["role"], "engineer");
    w.send(json!({"type":"delete_client","client_id": bo_id}))
        .await;
    let c = w.recv_type("clients").await;
    let c = if c["clients"].as_array().unwrap().len() == 2 {
        w.recv_type("clients").await
    } else {
        c
    };
    assert_eq!(c["clients"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_a_change_made_just_before() {
    let dir = tmp();
    let server = Server::start(dir.path(), &[]);
    let (mut a, id, _) = new_client(&server, "Dee").await;
    a.send(json!({"type":"update_master","gain":0.3})).await;
    assert_eq!(a.recv().await["type"], "master_updated");
    // SIGTERM right after the ack, inside the debounce window.
    let code = server.terminate();
    assert_eq!(code, Some(0));
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap())
            .unwrap();
    assert_eq!(state["channels_state"][&id]["master_gain"], 0.3);
    assert_eq!(state["format_version"], 1);
}

/// 30 cycles of (changes over WS, SIGKILL, restart): every change acked >= 150 ms
/// before the kill is in the state the restarted server serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_keeps_every_change_acked_150ms_before() {
    let dir = tmp();
    let mut server = Server::start(dir.path(), &[]);
    let (mut ws, id, token) = new_client(&server, "Kim").await;
    drop(ws.inner.close(None).await);
    let mut expected_gain: Option<f64> = None;
    for cycle in 0..30u32 {
        let mut ws = Ws::connect(&server.ws_url()).await;
        let w = ws.hello(json!({"client_id": id, "token": token})).await;
        if let Some(g) = expected_gain {
            assert_eq!(
                w["mix"]["gains"]["0"].as_f64(),
                Some(g),
                "cycle {cycle}: lost a change"
            );
        }
        // A stream of changes; the last ones land < 150 ms before the kill.
        let n = 5 + (cycle % 7);
        let mut acked: Vec<(f64, std::time::Instant)> = Vec::new();
        for i in 0..n {
            let g = ((cycle * 31 + i * 7) % 200) as f64 / 100.0;
            ws.send(json!({"type":"update_gain","channel":0,"gain":g}))
                .await;
            let ack = ws.recv_type("gain_updated").await;
            acked.push((ack["gain"].as_f64().unwrap(), std::time::Instant::now()));
            tokio::time::sleep(Duration::from_millis(10 + (i as u64 * 13) % 40)).await;
        }
        let kill_at = std::time::Instant::now();
        server.kill9();
        // The newest change acked >= 150 ms before the kill must be there; newer ones may be.
        let must: Vec<f64> = acked
            .iter()
            .filter(|(_, t)| kill_at.duration_since(*t) >= Duration::from_millis(150))
            .map(|(g, _)| *g)
            .collect();
        server = Server::start(dir.path(), &[]);
        let state = server.state_json();
        let stored = state["channels_state"][&id]["gains"]["0"]
            .as_f64()
            .unwrap_or(1.0);
        if let Some(last_must) = must.last() {
            let idx_must = acked.iter().rposition(|(g, _)| g == last_must).unwrap();
            let ok = acked[idx_must..].iter().any(|(g, _)| *g == stored);
            assert!(
                ok,
                "cycle {cycle}: stored {stored}, acked {acked:?}, must have {last_must}"
            );
        }
        expected_gain = Some(stored);
        assert!(
            std::fs::read_dir(dir.path()).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("corrupt")),
            "a corrupt file appeared"
        );
    }
}

/// The demo band names its channels on the page with no config; a configured name wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_band_names_its_channels_and_configured_names_win() {
    let dir = tmp();
    std::fs::write(
        dir.path().join("monmix.toml"),
        "[audio]\nchannel_names = [\"Vox\"]\n",
    )
    .unwrap();
    let server = InProcess::start_with_input(dir.path(), "demo").await;
    let mut ws = Ws::connect(&server.ws_url()).await;
    let w = ws.hello(json!({"name": "Ana"})).await;
    let names: Vec<&str> = w["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["Vox", "Kick", "Snare", "Hi-hat", "Bass", "Keys", "Pad", "Lead"]
    );
    assert!(server.stop().await, "clean stop");
}
