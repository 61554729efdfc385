//! The whole server end to end: a musician builds a mix over the WebSocket of a real
//! `monmix serve --input tones` process and hears exactly that mix over WHEP; a change
//! made over the WebSocket is heard; tokens guard the audio; the engineer's cue token
//! opens any mix.

use crate::common;

use std::time::Duration;

use crate::common::whep_listener::{http_request, pcm_of, ClientOptions, WhepListener};
use common::fft::{assert_absent, assert_level, channel, tone_level_dbfs};
use common::in_process::InProcess;
use common::{Endpoint, Ws, ADMIN_PIN};
use monmix::audio::tones::tone_frequency;
use serde_json::json;

async fn record(l: &WhepListener, dur: Duration) -> Vec<f32> {
    drop(l.take_frames());
    tokio::time::sleep(dur).await;
    pcm_of(&l.take_frames())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_musician_hears_the_mix_built_over_the_websocket() {
    let dir = tempfile::tempdir().unwrap();
    let server = InProcess::start(dir.path()).await;
    let mut ws = Ws::connect(&server.ws_url()).await;
    let w = ws.hello(json!({"name": "Ana"})).await;
    let id = w["client_id"].as_str().unwrap().to_string();
    let token = w["token"].as_str().unwrap().to_string();
    // Kick hard left, Bass -6 dB hard right, Snare muted; Keys not subscribed.
    ws.send(
        json!({"type":"subscribe","channels":[0,1,2],"gains":{"2":0.5},"pans":{"0":-1.0,"2":1.0}}),
    )
    .await;
    ws.recv_type("subscribed").await;
    ws.send(json!({"type":"toggle_mute","channel":1,"muted":true}))
        .await;
    ws.recv_type("mute_updated").await;

    let url = format!("http://{}/whep/{id}", server.addr);
    // Wrong token: 401 before any audio.
    let bad = WhepListener::connect(
        &url,
        Some("00112233445566778899aabbccddeeff"),
        ClientOptions::default(),
    )
    .await;
    assert!(bad.is_err(), "wrong token accepted");

    let l = WhepListener::connect(&url, Some(&token), ClientOptions::default())
        .await
        .expect("whep");
    assert!(
        l.wait_connected(Duration::from_secs(10)).await,
        "WebRTC did not connect"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pcm = record(&l, Duration::from_millis(1000)).await;
    let (left, right) = (channel(&pcm, 2, 0), channel(&pcm, 2, 1));
    let f = tone_frequency;
    assert_level("kick L", tone_level_dbfs(&left, f(0)), -20.0, 1.0);
    assert_absent("kick R", tone_level_dbfs(&right, f(0)), -60.0);
    assert_level("bass R", tone_level_dbfs(&right, f(2)), -26.02, 1.0);
    assert_absent("bass L", tone_level_dbfs(&left, f(2)), -60.0);
    assert_absent(
        "snare (muted)",
        tone_level_dbfs(&left, f(1)).max(tone_level_dbfs(&right, f(1))),
        -60.0,
    );
    assert_absent(
        "keys (off)",
        tone_level_dbfs(&left, f(3)).max(tone_level_dbfs(&right, f(3))),
        -60.0,
    );

    // The engineer sees the musician listening.
    let mut eng = Ws::connect(&server.ws_url()).await;
    let ew = eng.hello(json!({"admin_pin": ADMIN_PIN})).await;
    let clients = eng.recv_type("clients").await;
    assert_eq!(clients["clients"][0]["listening"], true, "{clients}");

    // A change over the WebSocket is heard: kick -12 dB.
    ws.send(json!({"type":"update_gain","channel":0,"gain":0.25119}))
        .await;
    ws.recv_type("gain_updated").await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let pcm = record(&l, Duration::from_millis(600)).await;
    assert_level(
        "kick after -12 dB",
        tone_level_dbfs(&channel(&pcm, 2, 0), f(0)),
        -32.0,
        1.0,
    );

    // The engineer's cue token opens the same mix; the same packets, one encoder.
    let cue = ew["cue_token"].as_str().expect("cue token").to_string();
    let c = WhepListener::connect(&url, Some(&cue), ClientOptions::default())
        .await
        .expect("cue");
    assert!(c.wait_connected(Duration::from_secs(10)).await);
    let metrics = http_request(
        "GET",
        &format!("http://{}/metrics", server.addr),
        None,
        None,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let body = metrics.body;
    let encoders = body
        .lines()
        .find(|l| l.starts_with("monmix_stream_active_mixes "))
        .unwrap_or_default()
        .to_string();
    assert!(
        encoders.ends_with(" 1"),
        "one encoder for one mix with two listeners: {encoders:?}\n{body}"
    );

    // DELETE ends the musician's session.
    assert!(matches!(l.delete().await, Ok(200 | 204)));
    c.close().await;
    assert!(server.stop().await, "clean stop");
}
