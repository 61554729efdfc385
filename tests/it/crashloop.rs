//! Crash loop: cycles of (changes from several clients over WebSocket and OSC, SIGKILL
//! at a random moment, restart, verify). Pass, every cycle: the state file loads, no
//! `.corrupt` file appears, every change acknowledged at least 150 ms before the kill is on
//! disk (or a newer value of the same parameter is), and the restarted server serves
//! exactly what is on disk.
//!
//! `cargo test --test it crashloop::` runs 20 cycles; `scripts/crashloop` runs 200 (the count
//! comes from `MONMIX_CRASHLOOP_CYCLES`, the seed from `MONMIX_CRASHLOOP_SEED`).
//!
//! An acknowledgement is the server's reply to the WebSocket change, or for an OSC change
//! (OSC has no replies) the `param_sync` another session of that mix receives.

use crate::common;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, Ws};
use monmix::state::persist::read_state;
use rand::{Rng, SeedableRng};
use rosc::{OscMessage, OscPacket, OscType};
use serde_json::json;

const DURABLE_AFTER: Duration = Duration::from_millis(150);
/// Values are n/1024: exact in f32 (OSC), f64 and JSON, distinct within a cycle.
const STEP: f64 = 1.0 / 1024.0;

/// (client id, channel) -> every value sent this cycle, in order, with its ack time.
type Log = HashMap<(String, u32), Vec<(f64, Option<Instant>)>>;

struct Client {
    id: String,
    token: String,
}

async fn hello(server: &Server, c: &Client) -> (Ws, serde_json::Value) {
    let mut ws = Ws::connect(&server.ws_url()).await;
    let w = ws
        .hello(json!({ "client_id": c.id, "token": c.token }))
        .await;
    (ws, w)
}

/// One WebSocket writer: gains on channels 0..4 of its mix, one change at a time, each
/// waited for, until the server dies.
async fn ws_writer(
    server_url: String,
    c: Client,
    seed: u64,
    base: u32,
    stop: Arc<AtomicBool>,
) -> Log {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut log = Log::new();
    let Some(mut ws) = Ws::try_connect(&server_url).await else {
        return log;
    };
    if !ws
        .try_send(json!({"type":"hello","client_id": c.id, "token": c.token}))
        .await
        || ws
            .try_recv_type("welcome", Duration::from_secs(5))
            .await
            .is_none()
    {
        return log;
    }
    let mut n = base;
    while !stop.load(Ordering::Relaxed) {
        let channel = rng.random_range(0..4u32);
        n += 1;
        let gain = f64::from(n % 2048) * STEP;
        let entry = log.entry((c.id.clone(), channel)).or_default();
        entry.push((gain, None));
        if !ws
            .try_send(json!({"type":"update_gain","channel":channel,"gain":gain}))
            .await
        {
            break;
        }
        match ws
            .try_recv_type("gain_updated", Duration::from_secs(5))
            .await
        {
            Some(ack) if ack["gain"].as_f64() == Some(gain) => {
                if let Some(last) = entry.last_mut() {
                    last.1 = Some(Instant::now());
                }
            }
            Some(other) => panic!("unexpected ack {other}"),
            None => break,
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(3..12))).await;
    }
    log
}

/// The OSC writer: gains on channels 4..8 of `target`'s mix; acks come from `observer`, a
/// WebSocket session of that mix.
async fn osc_writer(
    osc: SocketAddr,
    target: String,
    mut observer: Ws,
    seed: u64,
    base: u32,
    stop: Arc<AtomicBool>,
) -> Log {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut log = Log::new();
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return log;
    };
    let mut n = base;
    while !stop.load(Ordering::Relaxed) {
        let channel = rng.random_range(4..8u32);
        n += 1;
        let gain = f64::from(n % 2048) * STEP;
        let p = OscPacket::Message(OscMessage {
            addr: format!("/mix/{target}/ch/{}/gain", channel + 1),
            args: vec![OscType::Float(gain as f32)],
        });
        let entry = log.entry((target.clone(), channel)).or_default();
        entry.push((gain, None));
        if sock
            .send_to(&rosc::encoder::encode(&p).unwrap_or_default(), osc)
            .is_err()
        {
            break;
        }
        // The matching param_sync; UDP on loopback does not lose a datagram at this rate,
        // but a dying server may: give up after a second.
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut acked = false;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match observer.try_recv_type("param_sync", left).await {
                Some(m)
                    if m["channel"].as_u64() == Some(u64::from(channel))
                        && m["value"].as_f64() == Some(gain) =>
                {
                    acked = true;
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
        if !acked {
            break;
        }
        if let Some(last) = entry.last_mut() {
            last.1 = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(3..12))).await;
    }
    log
}

fn corrupt_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.contains(".corrupt"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_keeps_every_acknowledged_change() {
    let cycles: usize = std::env::var("MONMIX_CRASHLOOP_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("MONMIX_CRASHLOOP_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("crash loop: {cycles} cycles, MONMIX_CRASHLOOP_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let state_path = dir.path().join("state.json");

    // Three clients: two change their mix over WebSocket, the third is driven over OSC.
    let mut server = Server::start(dir.path(), &[]);
    let mut clients = Vec::new();
    for name in ["Ana", "Bo", "Osc"] {
        let mut ws = Ws::connect(&server.ws_url()).await;
        let w = ws.hello(json!({ "name": name })).await;
        ws.send(json!({"type":"subscribe","channels":[0,1,2,3,4,5,6,7]}))
            .await;
        ws.recv_type("subscribed").await;
        clients.push(Client {
            id: w["client_id"].as_str().unwrap().to_string(),
            token: w["token"].as_str().unwrap().to_string(),
        });
    }
    server.signal(15);
    let _ = server.child.wait();

    let mut kills_with_durable = 0usize;
    let mut checked = 0usize;
    for cycle in 0..cycles {
        server = Server::start(dir.path(), &[]);
        let on_disk = read_state(&state_path)
            .expect("state loads")
            .expect("state exists")
            .0;
        // The restarted server serves exactly what is on disk.
        for c in &clients {
            let (ws, w) = hello(&server, c).await;
            let disk = &on_disk.channels_state[&c.id];
            for ch in 0..8u32 {
                let served = w["mix"]["gains"][ch.to_string()].as_f64().unwrap_or(1.0);
                assert_eq!(
                    served,
                    disk.gain(ch),
                    "cycle {cycle}: server serves {served} for {} ch {ch}, disk has {}",
                    c.id,
                    disk.gain(ch)
                );
            }
            drop(ws);
        }

        let stop = Arc::new(AtomicBool::new(false));
        let base = (cycle as u32 * 37) % 1024;
        let mut tasks = Vec::new();
        for (i, c) in clients.iter().take(2).enumerate() {
            tasks.push(tokio::spawn(ws_writer(
                server.ws_url(),
                Client {
                    id: c.id.clone(),
                    token: c.token.clone(),
                },
                rng.random(),
                base + i as u32 * 7,
                stop.clone(),
            )));
        }
        let (observer, _) = hello(&server, &clients[2]).await;
        tasks.push(tokio::spawn(osc_writer(
            server.osc.expect("osc on"),
            clients[2].id.clone(),
            observer,
            rng.random(),
            base + 14,
            stop.clone(),
        )));

        tokio::time::sleep(Duration::from_millis(rng.random_range(150..1500))).await;
        let killed_at = Instant::now();
        let log_path = server.stderr_log.clone();
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        let mut log = Log::new();
        for t in tasks {
            log.extend(t.await.expect("writer task"));
        }

        let corrupt = corrupt_files(dir.path());
        assert!(corrupt.is_empty(), "cycle {cycle}: {corrupt:?}");
        let after = read_state(&state_path)
            .unwrap_or_else(|e| panic!("cycle {cycle}: state does not load: {e}"))
            .unwrap_or_else(|| panic!("cycle {cycle}: state.json missing"))
            .0;
        let mut durable_this_cycle = false;
        for ((id, ch), sent) in &log {
            let stored = after.channels_state[id].gain(*ch);
            let before = on_disk.channels_state[id].gain(*ch);
            let durable = sent.iter().rposition(
                |(_, ack)| matches!(ack, Some(t) if killed_at.duration_since(*t) >= DURABLE_AFTER),
            );
            match durable {
                Some(i) => {
                    durable_this_cycle = true;
                    checked += 1;
                    if !sent[i..].iter().any(|(v, _)| *v == stored) {
                        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                        let notes: Vec<&str> = log
                            .lines()
                            .filter(|l| l.contains("state") || l.contains("persist"))
                            .collect();
                        eprintln!(
                            "server log, state lines:\n{}",
                            notes[notes.len().saturating_sub(20)..].join("\n")
                        );
                    }
                    assert!(
                        sent[i..].iter().any(|(v, _)| *v == stored),
                        "cycle {cycle} (seed {seed}): {id} ch {ch} is {stored} on disk, but \
                         {} was acknowledged {:?} before the kill; sent: {:?}",
                        sent[i].0,
                        sent[i].1.map(|t| killed_at.duration_since(t)),
                        sent.iter().map(|(v, _)| v).collect::<Vec<_>>()
                    );
                }
                None => assert!(
                    stored == before || sent.iter().any(|(v, _)| *v == stored),
                    "cycle {cycle}: {id} ch {ch} is {stored}, neither {before} nor sent"
                ),
            }
        }
        if durable_this_cycle {
            kills_with_durable += 1;
        }
    }
    eprintln!(
        "crash loop: {cycles} kills, {kills_with_durable} with durable changes, \
         {checked} (mix, channel) durability checks passed"
    );
    assert!(
        kills_with_durable * 2 >= cycles,
        "too few cycles exercised durability ({kills_with_durable}/{cycles})"
    );
}
