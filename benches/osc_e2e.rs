//! End to end on loopback, in-process server: OSC change -> WebSocket `param_sync`
//! latency (p50/p99 over 1,000 changes), and UDP datagrams handled per second.
//! Prints its figures; `cargo bench --bench osc_e2e`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use monmix::config::Config;
use rosc::{OscMessage, OscPacket, OscType};
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

fn enc(addr: &str, args: Vec<OscType>) -> Vec<u8> {
    rosc::encoder::encode(&OscPacket::Message(OscMessage {
        addr: addr.into(),
        args,
    }))
    .unwrap()
}

async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).unwrap(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("ws: {other:?}"),
        }
    }
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.audio.input = "tones".into();
        cfg.audio.channels = 8;
        cfg.server.http = "127.0.0.1:0".parse().unwrap();
        cfg.server.osc = "127.0.0.1:0".parse().unwrap();
        cfg.state.path = dir.path().join("state.json");
        cfg.mdns.enabled = false;
        cfg.osc.meter_hz = 0.0;
        let server = monmix::server::Server::start(cfg).await.unwrap();
        let http = server.http_addr();
        let osc: SocketAddr = server.osc_addr().unwrap();
        let stats = server.osc_stats().unwrap();
        tokio::spawn(server.run_until(std::future::pending()));

        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{http}/ws")).await.unwrap();
        ws.send(Message::Text(json!({"type":"hello","name":"Bench"}).to_string().into())).await.unwrap();
        let w = next_json(&mut ws).await;
        assert_eq!(w["type"], "welcome");

        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // Latency: one change at a time, OSC send -> param_sync received.
        let mut lat = Vec::with_capacity(1000);
        for k in 0..1000 {
            let g = 0.001 + (k % 1000) as f32 / 1001.0;
            let t = Instant::now();
            sock.send_to(&enc("/mix/1/ch/1/gain", vec![OscType::Float(g)]), osc).await.unwrap();
            loop {
                let m = next_json(&mut ws).await;
                if m["type"] == "param_sync" {
                    break;
                }
            }
            lat.push(t.elapsed());
        }
        let p50 = pct(&mut lat, 0.5);
        let p99 = pct(&mut lat, 0.99);
        println!("osc_e2e: OSC change -> WS param_sync over 1000 changes: p50 {p50:?}, p99 {p99:?}, max {:?}", lat[lat.len() - 1]);

        // Throughput: 20,000 fader datagrams as fast as one sender can, then a query
        // (answered after everything before it, the socket is FIFO).
        let n = 20_000u64;
        let before = stats.datagrams.load(std::sync::atomic::Ordering::Relaxed);
        let datagrams: Vec<Vec<u8>> = (0..n).map(|k| enc("/mix/1/ch/2/fader", vec![OscType::Float((k % 1000) as f32 / 1000.0)])).collect();
        let t = Instant::now();
        for d in &datagrams {
            sock.send_to(d, osc).await.unwrap();
        }
        sock.send_to(&enc("/info", vec![]), osc).await.unwrap();
        let mut buf = [0u8; 2048];
        let _ = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf)).await;
        let dt = t.elapsed();
        let got = stats.datagrams.load(std::sync::atomic::Ordering::Relaxed) - before;
        println!(
            "osc_e2e: {n} fader datagrams sent, {got} handled in {dt:?}: {:.0} datagrams/s end to end (sender, server and WS fan-out share 2 cores)",
            got as f64 / dt.as_secs_f64()
        );
    });
}
