//! monmix on a real, clocked audio stack: a private PipeWire (its own dbus, pipewire,
//! wireplumber) with an 8-channel stage bus that a tones WAV plays into. monmix captures
//! it with `--input device:pipewire`, and a WHEP listener's FFT checks that capture is
//! bit-true (every channel at its level, on its side, nothing leaking), then that a node
//! gone and PipeWire killed mid-run silence the mix without stalling the engine, are
//! counted, and heal by themselves.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::churn::{metrics, must};
use crate::common::fft::{assert_absent, assert_level, channel, tone_level_dbfs};
use crate::common::pipewire::{write_tones_wav, PipeWire};
use crate::common::whep_listener::{pcm_of, ClientOptions, WhepListener};
use crate::common::{Launch, Server, Ws};
use monmix::audio::tones::tone_frequency;

const N: usize = 8;
const TONE_DB: f64 = -20.0;
/// "Absent" through Opus. Its floor at a tone's FFT bin is -50 to -66 dBFS here, next to
/// seven -20 dBFS tones (a muted channel reads that, and so does `--input tones`), so the
/// WHEP checks judge sides and mutes at 20 dB under the tone. The capture's own
/// isolation, 60 dB and more, is measured before Opus, on the input meters.
const ABSENT_DB: f64 = -40.0;
/// Isolation asked of capture: a silent channel next to -20 dBFS tones stays 60 dB under.
const ISOLATION_DB: f64 = 60.0;

/// Input peaks (dBFS) over a second of meter messages: the highest each channel showed.
async fn input_peaks(ws: &mut Ws) -> Vec<f64> {
    let mut peak = [0.0f64; N];
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        let m = ws.recv_type("meters").await;
        for (k, p) in peak.iter_mut().enumerate() {
            *p = p.max(m["inputs"][k][1].as_f64().unwrap_or(0.0));
        }
    }
    peak.iter().map(|p| 20.0 * p.max(1e-9).log10()).collect()
}

async fn record(l: &WhepListener, dur: Duration) -> Vec<f32> {
    drop(l.take_frames());
    tokio::time::sleep(dur).await;
    pcm_of(&l.take_frames())
}

/// Levels of every channel's tone on (left, right).
fn levels(pcm: &[f32]) -> Vec<(f64, f64)> {
    let (l, r) = (channel(pcm, 2, 0), channel(pcm, 2, 1));
    (0..N)
        .map(|k| {
            let f = tone_frequency(k);
            (tone_level_dbfs(&l, f), tone_level_dbfs(&r, f))
        })
        .collect()
}

/// Even channels hard left, odd hard right; ch2 muted, ch3 not subscribed; ch0 at `g0`.
fn check_mix(what: &str, lv: &[(f64, f64)], g0_db: f64) {
    for (k, &(l, r)) in lv.iter().enumerate() {
        let name = format!("{what}: ch{k}");
        if k == 2 || k == 3 {
            assert_absent(&format!("{name} (muted/off) L"), l, ABSENT_DB);
            assert_absent(&format!("{name} (muted/off) R"), r, ABSENT_DB);
            continue;
        }
        let want = if k == 0 { TONE_DB + g0_db } else { TONE_DB };
        let (on, off) = if k % 2 == 0 { (l, r) } else { (r, l) };
        assert_level(&format!("{name} on its side"), on, want, 1.0);
        assert_absent(&format!("{name} on the other side"), off, ABSENT_DB);
    }
}

fn all_absent(lv: &[(f64, f64)]) -> bool {
    lv.iter().all(|&(l, r)| l < ABSENT_DB && r < ABSENT_DB)
}

/// Records until every tone is back at its level (or `limit` passes); returns how long.
async fn until_back(l: &WhepListener, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let lv = levels(&record(l, Duration::from_millis(500)).await);
        let back = lv
            .iter()
            .enumerate()
            .filter(|(k, _)| *k != 2 && *k != 3)
            .all(|(k, &(l, r))| {
                let want = if k == 0 { TONE_DB - 12.04 } else { TONE_DB };
                (l.max(r) - want).abs() <= 1.0
            });
        if back {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "audio not back after {limit:?}: {lv:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipewire_capture_is_bit_true_and_heals_after_kills() {
    let _solo = crate::solo();
    let Some(pw) = PipeWire::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    pw.create_sink("stage", N);
    let wav = write_tones_wav(&dir.path().join("tones.wav"), N, 30.0, |_| Some(TONE_DB));
    let even = write_tones_wav(&dir.path().join("even.wav"), N, 10.0, |k| {
        (k % 2 == 0).then_some(TONE_DB)
    });
    let player = pw.play(&even, "stage", N);

    let mut env = pw.env();
    env.push(("PIPEWIRE_NODE".into(), "stage".into()));
    let server = Server::start_with_env(
        dir.path(),
        "device:pipewire",
        &[],
        &Launch {
            env,
            own_channels: true,
        },
    );
    let log = std::fs::read_to_string(&server.stderr_log).unwrap_or_default();
    assert!(
        log.contains("the PipeWire node's 8 channels"),
        "monmix did not open the node's own channel count:\n{log}"
    );

    let mut ws = Ws::connect(&server.ws_url()).await;
    let w = ws.hello(json!({"name": "Ana"})).await;
    assert_eq!(w["channels"].as_array().map(Vec::len), Some(N), "{w}");
    let id = w["client_id"].as_str().unwrap().to_string();
    let token = w["token"].as_str().unwrap().to_string();
    let pans: serde_json::Map<String, serde_json::Value> = (0..N)
        .map(|k| (k.to_string(), json!(if k % 2 == 0 { -1.0 } else { 1.0 })))
        .collect();
    ws.send(json!({"type":"subscribe","channels":[0,1,2,4,5,6,7],"pans":pans}))
        .await;
    ws.recv_type("subscribed").await;
    ws.send(json!({"type":"toggle_mute","channel":2,"muted":true}))
        .await;
    ws.recv_type("mute_updated").await;

    // Capture is bit-true, measured before Opus on the input meters (pre-fader): the
    // tones on even channels at their level, the silent odd channels 60 dB under.
    ws.send(json!({"type":"watch_meters","on":true})).await;
    let peaks = input_peaks(&mut ws).await;
    eprintln!("input peaks, even channels playing (dBFS): {peaks:.1?}");
    for (k, p) in peaks.iter().enumerate() {
        if k % 2 == 0 {
            assert_level(&format!("input ch{k} peak"), *p, TONE_DB, 1.0);
        } else {
            assert_absent(&format!("silent input ch{k}"), *p, TONE_DB - ISOLATION_DB);
        }
    }
    drop(player);
    let player = pw.play(&wav, "stage", N);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peaks = input_peaks(&mut ws).await;
    eprintln!("input peaks, all playing (dBFS): {peaks:.1?}");
    for (k, p) in peaks.iter().enumerate() {
        assert_level(&format!("input ch{k} peak"), *p, TONE_DB, 1.0);
    }
    ws.send(json!({"type":"watch_meters","on":false})).await;

    let url = format!("http://{}/whep/{id}", server.addr);
    let l = WhepListener::connect(&url, Some(&token), ClientOptions::default())
        .await
        .expect("whep");
    assert!(l.wait_connected(Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lv = levels(&record(&l, Duration::from_millis(1500)).await);
    eprintln!("captured through PipeWire (dBFS L/R per channel): {lv:.1?}");
    check_mix("as set", &lv, 0.0);

    // A gain change is heard: ch0 -12 dB.
    ws.send(json!({"type":"update_gain","channel":0,"gain":0.25}))
        .await;
    ws.recv_type("gain_updated").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lv = levels(&record(&l, Duration::from_millis(1000)).await);
    check_mix("ch0 at -12 dB", &lv, -12.04);

    // The interface is unplugged: its bus and what played into it vanish. The mix goes
    // silent, the engine keeps ticking. (WirePlumber moves monmix's stream to the default
    // source meanwhile, here a silent null sink's monitor; README "Wired in-ears" says so.)
    let before = metrics(server.addr).await;
    drop(player);
    pw.destroy("stage");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    let lv = levels(&record(&l, Duration::from_millis(1000)).await);
    assert!(all_absent(&lv), "node gone, audio still there: {lv:.1?}");
    let after = metrics(server.addr).await;
    let ticks =
        must(&after, "monmix_engine_ticks_total") - must(&before, "monmix_engine_ticks_total");
    let secs = 0.5 + t.elapsed().as_secs_f64();
    assert!(
        ticks >= 80.0 * secs,
        "engine stalled: {ticks} ticks in {secs:.1} s"
    );
    // It comes back: PipeWire relinks monmix's stream when the node returns.
    pw.create_sink("stage", N);
    let player = pw.play(&wav, "stage", N);
    let healed = until_back(&l, Duration::from_secs(10)).await;
    eprintln!("node back: audio back in {healed:?}");

    // PipeWire itself dies: silence, no stall, a reconnect counted, and audio back by itself
    // once it runs again.
    let before = metrics(server.addr).await;
    let reconnects0 = must(&before, "monmix_input_reconnects_total");
    pw.kill_daemons();
    let t = Instant::now();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let lv = levels(&record(&l, Duration::from_millis(1000)).await);
    assert!(
        all_absent(&lv),
        "PipeWire gone, audio still there: {lv:.1?}"
    );
    let mid = metrics(server.addr).await;
    let ticks =
        must(&mid, "monmix_engine_ticks_total") - must(&before, "monmix_engine_ticks_total");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        ticks >= 80.0 * secs,
        "engine stalled while PipeWire was gone: {ticks} ticks in {secs:.1} s"
    );
    pw.restart_daemons();
    pw.create_sink("stage", N);
    player.restart();
    let healed = until_back(&l, Duration::from_secs(15)).await;
    let after = metrics(server.addr).await;
    let reconnects = must(&after, "monmix_input_reconnects_total") - reconnects0;
    eprintln!("PipeWire back: audio back in {healed:?}, {reconnects} reconnect(s)");
    assert!(reconnects >= 1.0, "the reconnect was not counted");
    // And bit-true again.
    let lv = levels(&record(&l, Duration::from_millis(1000)).await);
    check_mix("after the restart", &lv, -12.04);
    assert_eq!(l.decode_errors(), 0);
    l.close().await;
    drop(player);
    server.kill9();
}
