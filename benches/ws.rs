//! WebSocket control-plane latency on loopback, against a bare echo WebSocket server
//! measured in the same run (the baseline: what axum + tungstenite + loopback cost alone).
//!
//! 50 concurrent sessions: 25 clients with two devices each. Device A of every client
//! sends `update_gain` changes and times the `gain_updated` ack; device B times the
//! `param_sync` of the same change. The echo baseline uses 50 sessions sending the same
//! JSON text and timing its echo.
//!
//! Fan-out: one active pair alone (2 sessions), then the same pair beside 198 idle
//! sessions of other musicians (200 sessions). Store events are routed per client, so
//! the idle sessions are never woken and the two `param_sync` p99s should match.
//!
//! Run: `cargo bench --bench ws` (prints a table; figures go to BENCHMARKS.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use monmix::config::Config;
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 25;
const CHANGES: usize = 200;
const PAUSE: Duration = Duration::from_millis(5);

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn echo(ws: WebSocketUpgrade) -> axum::response::Response {
    ws.on_upgrade(|mut s: WebSocket| async move {
        while let Some(Ok(m)) = s.recv().await {
            if let AxMessage::Text(_) = m {
                if s.send(m).await.is_err() {
                    break;
                }
            }
        }
    })
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Client) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str()).unwrap_or(Value::Null)
            }
            Some(Ok(_)) => continue,
            _ => return Value::Null,
        }
    }
}

async fn run_echo(url: String) -> Vec<f64> {
    let mut tasks = Vec::new();
    for _ in 0..2 * CLIENTS {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .expect("echo connect");
            let text = json!({"type":"update_gain","channel":1,"gain":0.5}).to_string();
            let mut out = Vec::with_capacity(CHANGES);
            for _ in 0..CHANGES {
                let t0 = Instant::now();
                ws.send(Message::Text(text.clone().into())).await.unwrap();
                let _ = next_json(&mut ws).await;
                out.push(t0.elapsed().as_secs_f64() * 1e6);
                tokio::time::sleep(PAUSE).await;
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// `idle` sessions of other clients that join, then only read (as an open page does).
async fn idle_sessions(url: &str, idle: usize) -> Vec<tokio::task::JoinHandle<()>> {
    let mut out = Vec::with_capacity(idle);
    for i in 0..idle {
        let (mut s, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        s.send(Message::Text(
            json!({"type":"hello","name":format!("idle {i}")})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        let _ = next_json(&mut s).await;
        out.push(tokio::spawn(async move {
            while !next_json(&mut s).await.is_null() {}
        }));
    }
    out
}

async fn run_monmix(url: String, clients: usize) -> (Vec<f64>, Vec<f64>) {
    let sync_times = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let url = url.clone();
        let sync_times = sync_times.clone();
        tasks.push(tokio::spawn(async move {
            let (mut a, _) = tokio_tungstenite::connect_async(&url)
                .await
                .expect("connect");
            a.send(Message::Text(
                json!({"type":"hello","name":format!("bench {c}")})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
            let w = next_json(&mut a).await;
            let (id, token) = (w["client_id"].clone(), w["token"].clone());
            let (mut b, _) = tokio_tungstenite::connect_async(&url)
                .await
                .expect("connect");
            b.send(Message::Text(
                json!({"type":"hello","client_id":id,"token":token})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
            let _ = next_json(&mut b).await;
            // Device B: timestamps of every param_sync, in arrival order.
            let reader = tokio::spawn(async move {
                let mut arrivals = Vec::with_capacity(CHANGES);
                while arrivals.len() < CHANGES {
                    let v = next_json(&mut b).await;
                    if v.is_null() {
                        break;
                    }
                    if v["type"] == "param_sync" {
                        arrivals.push(Instant::now());
                    }
                }
                arrivals
            });
            let mut acks = Vec::with_capacity(CHANGES);
            let mut sent = Vec::with_capacity(CHANGES);
            for i in 0..CHANGES {
                // Alternate values so every change really changes the state.
                let g = if i % 2 == 0 { 0.5 } else { 0.75 };
                let t0 = Instant::now();
                a.send(Message::Text(
                    json!({"type":"update_gain","channel":1,"gain":g})
                        .to_string()
                        .into(),
                ))
                .await
                .unwrap();
                loop {
                    let v = next_json(&mut a).await;
                    if v["type"] == "gain_updated" || v.is_null() {
                        break;
                    }
                }
                acks.push(t0.elapsed().as_secs_f64() * 1e6);
                sent.push(t0);
                tokio::time::sleep(PAUSE).await;
            }
            let arrivals = tokio::time::timeout(Duration::from_secs(10), reader)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            let mut s = sync_times.lock().await;
            for (t0, t1) in sent.iter().zip(arrivals.iter()) {
                s.push(t1.duration_since(*t0).as_secs_f64() * 1e6);
            }
            acks
        }));
    }
    let mut acks = Vec::new();
    for t in tasks {
        acks.extend(t.await.unwrap());
    }
    let syncs = sync_times.lock().await.clone();
    (acks, syncs)
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let mut cfg = Config::default();
        cfg.server.http = "127.0.0.1:0".parse()?;
        cfg.server.osc = "127.0.0.1:0".parse()?;
        cfg.audio.input = "tones".into();
        cfg.audio.channels = 8;
        cfg.state.path = dir.path().join("state.json");
        cfg.security.max_sessions_per_ip = 512;
        cfg.server.max_connections_per_ip = 512;
        cfg.state.max_clients = 512;
        let server = monmix::server::Server::start(cfg).await?;
        let url = format!("ws://{}/ws", server.http_addr());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run_until(async move {
            let _ = stop_rx.await;
        }));

        let echo_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let echo_url = format!("ws://{}/ws", echo_listener.local_addr()?);
        tokio::spawn(async move {
            let app = axum::Router::new().route("/ws", get(echo));
            let _ = axum::serve(echo_listener, app).await;
        });

        // Warm up both, then measure baseline and monmix back to back.
        let _ = run_echo(echo_url.clone()).await;
        let mut base = run_echo(echo_url).await;
        let (mut acks, mut syncs) = run_monmix(url.clone(), CLIENTS).await;
        // Fan-out: one pair alone, then beside 198 idle sessions.
        let (_, mut alone) = run_monmix(url.clone(), 1).await;
        let idle = idle_sessions(&url, 198).await;
        let (_, mut crowd) = run_monmix(url.clone(), 1).await;
        for t in idle {
            t.abort();
        }

        let b50 = pct(&mut base, 0.5);
        let b99 = pct(&mut base, 0.99);
        let a50 = pct(&mut acks, 0.5);
        let a99 = pct(&mut acks, 0.99);
        let s50 = pct(&mut syncs, 0.5);
        let s99 = pct(&mut syncs, 0.99);
        println!("ws control plane, {} sessions, {} changes each, loopback", 2 * CLIENTS, CHANGES);
        println!("| measure | samples | p50 µs | p99 µs | p50 / echo p50 | p99 / echo p99 |");
        println!("|---|---|---|---|---|---|");
        println!("| bare echo WS round trip (baseline) | {} | {b50:.0} | {b99:.0} | 1.00 | 1.00 |", base.len());
        println!("| monmix update_gain -> gain_updated | {} | {a50:.0} | {a99:.0} | {:.2} | {:.2} |", acks.len(), a50 / b50, a99 / b99);
        println!("| monmix update_gain -> param_sync on 2nd device | {} | {s50:.0} | {s99:.0} | {:.2} | {:.2} |", syncs.len(), s50 / b50, s99 / b99);
        let (l50, l99) = (pct(&mut alone, 0.5), pct(&mut alone, 0.99));
        let (c50, c99) = (pct(&mut crowd, 0.5), pct(&mut crowd, 0.99));
        println!();
        println!("fan-out: one pair changing, {CHANGES} changes");
        println!("| sessions open | samples | param_sync p50 µs | p99 µs | p99 / echo p99 |");
        println!("|---|---|---|---|---|");
        println!("| 2 (the pair alone) | {} | {l50:.0} | {l99:.0} | {:.2} |", alone.len(), l99 / b99);
        println!("| 200 (the pair + 198 idle) | {} | {c50:.0} | {c99:.0} | {:.2} |", crowd.len(), c99 / b99);
        println!("| ratio 200 / 2 | | {:.2} | {:.2} | |", c50 / l50, c99 / l99);
        let _ = stop_tx.send(());
        let _ = serving.await;
        anyhow::Ok(())
    })
}
