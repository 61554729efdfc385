//! Soak: a real `monmix serve --input demo` process with N WHEP listeners, each on its own
//! mix (distinct gains, pans and master set over the WebSocket), under a changing control
//! load (engineer sessions moving faders at a rate that swings around 20 changes/s, plus
//! periodic reconnects of engineer and performer sessions), for a set time. Every few
//! seconds it samples `/metrics` and `/proc/<pid>`, and drains what each listener received
//! (RTP sequence gaps = packets lost, timestamp jumps = frames the server skipped, Opus
//! decode errors, arrival gaps). At the end it prints a table, writes a JSON report and
//! fails if a goal is missed:
//!
//! - server audio underruns, overruns and input drops during the run: 0;
//! - server RSS growth from the end of warm-up to the end: < 5 % (`SOAK_MAX_RSS_GROWTH`);
//! - no decode error, no control error, every listener still receiving at the end, and a
//!   clean exit (SIGTERM → 0, no panic in the log).
//!
//! Encode p99 (from `/metrics`), lost packets, skipped frames, arrival gaps and control
//! acknowledgement latency are reported, not judged: on a shared 2-core box they measure
//! the box as much as the server.
//!
//! Two entry points:
//! - `soak_ci` (in `cargo test`): 16 listeners for 40 s in a debug build (why 16, not 64:
//!   the listeners' WebRTC receive and Opus decode run in this test process, on the same two
//!   cores as the server, and a debug build of both does not keep 64 real-time streams up;
//!   16 exercises every path). RSS goal relaxed to 15 % (over 30 s the allocator is still
//!   finding its size) and up to 1,000 underruns/overruns/input drops (a quarter of the
//!   frames: a starved debug build; the goal of 0 is for the release soak).
//! - `soak` (ignored; `scripts/soak` runs it in release): `SOAK_SECONDS` (1800),
//!   `SOAK_LISTENERS` (64), `SOAK_WARMUP` (60), `SOAK_SAMPLE_SECS` (5), `SOAK_CONTROL_RATE`
//!   (20 changes/s mean), `SOAK_CONTROL_CLIENTS` (4), `SOAK_RECONNECT_SECS` (30),
//!   `SOAK_MAX_RSS_GROWTH` (5, %), `SOAK_REPORT` (`$CARGO_TARGET_TMPDIR/soak-report.json`).

use crate::common;
use crate::common::churn;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::proc_stats::ProcStats;
use crate::common::whep_listener::{ClientOptions, WhepListener};
use churn::{metric, metrics, must};
use common::{assert_schema, Server, Ws, ADMIN_PIN};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Demo band channels.
const CHANNELS: usize = 8;
/// RTP timestamp step of one 10 ms frame.
const FRAME_SAMPLES: u32 = 480;

#[derive(Clone, Debug)]
struct SoakConfig {
    seconds: u64,
    listeners: usize,
    warmup: u64,
    sample_every: Duration,
    control_rate: f64,
    control_clients: usize,
    reconnect_every: Duration,
    max_rss_growth_pct: f64,
    /// Underruns, overruns and input drops allowed (each): 0 but in CI, see `soak_ci`.
    max_xruns: f64,
    report: PathBuf,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a valid value")),
        Err(_) => default,
    }
}

impl SoakConfig {
    fn from_env() -> SoakConfig {
        SoakConfig {
            seconds: env_or("SOAK_SECONDS", 1800),
            listeners: env_or("SOAK_LISTENERS", 64),
            warmup: env_or("SOAK_WARMUP", 60),
            sample_every: Duration::from_secs(env_or("SOAK_SAMPLE_SECS", 5)),
            control_rate: env_or("SOAK_CONTROL_RATE", 20.0),
            control_clients: env_or("SOAK_CONTROL_CLIENTS", 4),
            reconnect_every: Duration::from_secs(env_or("SOAK_RECONNECT_SECS", 30)),
            max_rss_growth_pct: env_or("SOAK_MAX_RSS_GROWTH", 5.0),
            max_xruns: 0.0,
            report: std::env::var_os("SOAK_REPORT")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("soak-report.json")
                }),
        }
    }
}

/// Listener `k`'s mix: every channel on, gains, pans and master that no other `k` shares.
fn unique_mix(k: usize) -> (Vec<f64>, Vec<f64>, f64) {
    let gains = (0..CHANNELS)
        .map(|c| 0.2 + 0.05 * ((k * 7 + c * 3) % 17) as f64)
        .collect();
    let pans = (0..CHANNELS)
        .map(|c| ((k + c * 5) % 21) as f64 / 10.0 - 1.0)
        .collect();
    (gains, pans, 0.5 + (k % 10) as f64 / 20.0)
}

#[derive(Clone)]
struct Client {
    id: String,
    token: String,
}

/// What one listener received, accumulated over the drains.
#[derive(Default, Debug)]
struct RxStats {
    packets: u64,
    last_seq: Option<u16>,
    last_ts: Option<u32>,
    last_arrival: Option<Instant>,
    /// Packets missing by RTP sequence (lost between server and listener).
    lost: u64,
    /// Frames missing by RTP timestamp but not by sequence (skipped by the server).
    skipped: u64,
    max_gap: Duration,
    sum_sq: f64,
    samples: u64,
    /// Packets in the last drain.
    recent: u64,
}

impl RxStats {
    fn drain(&mut self, l: &WhepListener) {
        let frames = l.take_frames();
        self.recent = frames.len() as u64;
        for f in frames {
            self.packets += 1;
            if let Some(s) = self.last_seq {
                let d = f.seq.wrapping_sub(s);
                if d > 1 && d < 0x8000 {
                    self.lost += u64::from(d - 1);
                }
            }
            if let Some(t) = self.last_ts {
                let d = f.timestamp.wrapping_sub(t);
                if d > FRAME_SAMPLES && d < 0x8000_0000 {
                    self.skipped += u64::from(d / FRAME_SAMPLES - 1);
                }
            }
            if let Some(a) = self.last_arrival {
                self.max_gap = self.max_gap.max(f.arrival.saturating_duration_since(a));
            }
            self.last_seq = Some(f.seq);
            self.last_ts = Some(f.timestamp);
            self.last_arrival = Some(f.arrival);
            self.sum_sq += f.pcm.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>();
            self.samples += f.pcm.len() as u64;
        }
    }

    fn rms(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            (self.sum_sq / self.samples as f64).sqrt()
        }
    }
}

/// Control-load counters, shared by the control tasks.
#[derive(Default)]
struct Control {
    sent: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    reconnects: AtomicU64,
    performer_sessions: AtomicU64,
    /// Acknowledgement latencies in µs (bounded: a 30 min run at 20/s is 36 k values).
    ack_us: Mutex<Vec<u64>>,
    first_error: Mutex<Option<String>>,
}

impl Control {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut f = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(what);
        }
    }
}

/// The total control rate at `t` seconds: swings between 25 % and 175 % of the mean over
/// a minute, so the load keeps changing.
fn rate_at(mean: f64, t: f64) -> f64 {
    mean * (1.0 + 0.75 * (t * std::f64::consts::TAU / 60.0).sin())
}

/// An engineer session that moves faders of random clients until `stop`, reconnecting
/// every `reconnect_every` (staggered by `index`).
async fn engineer_load(
    url: String,
    clients: Arc<Vec<Client>>,
    cfg: SoakConfig,
    index: usize,
    stop: Arc<AtomicBool>,
    ctl: Arc<Control>,
    t0: Instant,
) {
    let per_client = |t: f64| rate_at(cfg.control_rate, t) / cfg.control_clients as f64;
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let mut ws = Ws::connect(&url).await;
        let w = ws.hello(json!({"admin_pin": ADMIN_PIN})).await;
        assert_eq!(w["role"], "engineer", "{w}");
        if !first {
            ctl.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        // Stagger the reconnects of the control clients over the period.
        let life = if first {
            cfg.reconnect_every
                .mul_f64((index + 1) as f64 / cfg.control_clients as f64)
        } else {
            cfg.reconnect_every
        };
        first = false;
        let until = Instant::now() + life;
        let mut pending: VecDeque<(Instant, &'static str)> = VecDeque::new();
        let mut next = Instant::now();
        let mut n = 0usize;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {
                    let k = rand::random_range(0..clients.len());
                    let c = rand::random_range(0..CHANNELS);
                    let (op, ack) = if n % 2 == 0 {
                        (json!({"type": "update_gain", "channel": c,
                                "gain": rand::random_range(0.1..1.2)}), "gain_updated")
                    } else {
                        (json!({"type": "update_pan", "channel": c,
                                "pan": rand::random_range(-1.0..1.0)}), "pan_updated")
                    };
                    n += 1;
                    ws.send(json!({"type": "update_client_mix", "client_id": clients[k].id, "op": op})).await;
                    ctl.sent.fetch_add(1, Ordering::Relaxed);
                    pending.push_back((Instant::now(), ack));
                    let rate = per_client(t0.elapsed().as_secs_f64()).max(0.1);
                    next += Duration::from_secs_f64(1.0 / rate);
                    // After a stall, do not burst to catch up.
                    next = next.max(Instant::now() - Duration::from_millis(100));
                }
                m = ws.inner.next() => {
                    let Some(Ok(m)) = m else {
                        ctl.error(format!("engineer {index}: connection lost"));
                        break;
                    };
                    let Message::Text(t) = m else { continue };
                    let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
                    assert_schema(&v);
                    let ty = v["type"].as_str().unwrap_or("");
                    if ty == "error" {
                        ctl.error(format!("engineer {index}: {v}"));
                        pending.pop_front();
                    } else if pending.front().is_some_and(|(_, a)| *a == ty) {
                        if let Some((at, _)) = pending.pop_front() {
                            ctl.acked.fetch_add(1, Ordering::Relaxed);
                            let us = at.elapsed().as_micros() as u64;
                            let mut l = ctl.ack_us.lock().unwrap_or_else(|e| e.into_inner());
                            if l.len() < 1_000_000 {
                                l.push(us);
                            }
                        }
                    }
                }
            }
        }
        // Collect the acks still in flight, then close cleanly.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pending.is_empty() && Instant::now() < deadline {
            match ws.recv_timeout(Duration::from_secs(5)).await {
                Some(v) if v["type"] == "error" => {
                    ctl.error(format!("engineer {index}: {v}"));
                    pending.pop_front();
                }
                Some(v) if pending.front().is_some_and(|(_, a)| v["type"] == *a) => {
                    pending.pop_front();
                    ctl.acked.fetch_add(1, Ordering::Relaxed);
                }
                Some(_) => {}
                None => break,
            }
        }
        let _ = ws.inner.close(None).await;
    }
}

/// Every 5 s a musician's phone reconnects: hello with its token, sets its master back to
/// its own value, leaves.
async fn performer_load(
    url: String,
    clients: Arc<Vec<Client>>,
    stop: Arc<AtomicBool>,
    ctl: Arc<Control>,
) {
    let mut k = 0;
    while !stop.load(Ordering::Relaxed) {
        let c = &clients[k % clients.len()];
        let mut ws = Ws::connect(&url).await;
        ws.hello(json!({"client_id": c.id, "token": c.token})).await;
        ws.send(json!({"type": "update_master", "gain": unique_mix(k % clients.len()).2}))
            .await;
        ctl.sent.fetch_add(1, Ordering::Relaxed);
        // Engineers edit this mix at the same time: a `param_sync` may come first (a full
        // `mix` resync when a change landed between the welcome snapshot and the
        // subscription, protocol/websocket.md). Failed CI once counting that as an error.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match ws.recv_timeout(left).await {
                Some(v) if v["type"] == "master_updated" => {
                    ctl.acked.fetch_add(1, Ordering::Relaxed);
                }
                Some(v) if v["type"] == "param_sync" => continue,
                other => ctl.error(format!("performer {k}: {other:?}")),
            }
            break;
        }
        let _ = futures_util::SinkExt::close(&mut ws.inner).await;
        ctl.performer_sessions.fetch_add(1, Ordering::Relaxed);
        k += 1;
        for _ in 0..50 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One `/metrics` + `/proc` sample.
#[derive(Debug, Clone)]
struct Sample {
    t: f64,
    proc: ProcStats,
    underruns: f64,
    overruns: f64,
    input_dropped: f64,
    late_ticks: f64,
    tap_drops: f64,
    frames_dropped: f64,
    packets_dropped: f64,
    listeners: f64,
    encode_p50: f64,
    encode_p99: f64,
    latency_p99: f64,
    max_tick: f64,
}

impl Sample {
    fn json(&self) -> Value {
        json!({
            "t": (self.t * 10.0).round() / 10.0,
            "rss_kb": self.proc.rss_kb, "fds": self.proc.fds, "threads": self.proc.threads,
            "underruns": self.underruns, "overruns": self.overruns,
            "input_dropped": self.input_dropped, "frames_dropped": self.frames_dropped,
            "packets_dropped": self.packets_dropped, "listeners": self.listeners,
            "encode_p99_ms": self.encode_p99 * 1e3,
        })
    }
}

async fn sample(server: &Server, t0: Instant) -> Sample {
    let text = metrics(server.addr).await;
    let q =
        |name: &str, q: &str| metric(&text, &format!("{name}{{quantile=\"{q}\"}}")).unwrap_or(0.0);
    Sample {
        t: t0.elapsed().as_secs_f64(),
        proc: ProcStats::of(server.pid()),
        underruns: must(&text, "monmix_engine_underruns_total"),
        overruns: must(&text, "monmix_engine_overruns_total"),
        input_dropped: must(&text, "monmix_input_dropped_total"),
        late_ticks: must(&text, "monmix_engine_late_ticks_total"),
        tap_drops: must(&text, "monmix_engine_tap_drops_total"),
        frames_dropped: must(&text, "monmix_stream_frames_dropped_total"),
        packets_dropped: must(&text, "monmix_stream_packets_dropped_total"),
        listeners: must(&text, "monmix_stream_listeners"),
        encode_p50: q("monmix_stream_encode_seconds", "0.5"),
        encode_p99: q("monmix_stream_encode_seconds", "0.99"),
        latency_p99: q("monmix_stream_internal_latency_seconds", "0.99"),
        max_tick: must(&text, "monmix_engine_max_tick_ns"),
    }
}

fn percentile(v: &mut [u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// Runs one soak; returns the report and the goals that failed.
async fn run_soak(cfg: SoakConfig) -> (Value, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("monmix.toml"),
        format!(
            "[audio]\nchannel_names = [\"Click\", \"Kick\", \"Snare\", \"Hi-hat\", \"Bass\", \"Keys\", \"Pad\", \"Lead\"]\n\
             [security]\nadmin_pin = \"{ADMIN_PIN}\"\n\
             [server]\nmax_connections_per_ip = 1024\n"
        ),
    )
    .expect("config");
    let server = Server::start_with_input(dir.path(), "demo", &[]);
    let url = server.ws_url();
    eprintln!(
        "soak: {} listeners, {} s (warm-up {} s), control {} changes/s by {} engineers, server pid {}",
        cfg.listeners,
        cfg.seconds,
        cfg.warmup,
        cfg.control_rate,
        cfg.control_clients,
        server.pid()
    );

    // One client per listener, each with its own mix.
    let mut clients = Vec::new();
    for k in 0..cfg.listeners {
        let mut ws = Ws::connect(&url).await;
        let w = ws.hello(json!({"name": format!("soak {k}")})).await;
        let (gains, pans, master) = unique_mix(k);
        let gains: serde_json::Map<String, Value> = gains
            .iter()
            .enumerate()
            .map(|(c, g)| (c.to_string(), json!(g)))
            .collect();
        let pans: serde_json::Map<String, Value> = pans
            .iter()
            .enumerate()
            .map(|(c, p)| (c.to_string(), json!(p)))
            .collect();
        ws.send(
            json!({"type": "subscribe", "channels": (0..CHANNELS).collect::<Vec<_>>(),
            "gains": gains, "pans": pans}),
        )
        .await;
        ws.recv_type("subscribed").await;
        ws.send(json!({"type": "update_master", "gain": master}))
            .await;
        ws.recv_type("master_updated").await;
        let _ = futures_util::SinkExt::close(&mut ws.inner).await;
        clients.push(Client {
            id: w["client_id"].as_str().expect("client_id").to_owned(),
            token: w["token"].as_str().expect("token").to_owned(),
        });
    }
    let clients = Arc::new(clients);

    // The listeners, 8 negotiating at a time.
    let t_connect = Instant::now();
    let mut listeners: Vec<WhepListener> = Vec::new();
    for chunk in clients.chunks(8) {
        let mut set = tokio::task::JoinSet::new();
        for c in chunk.iter().cloned() {
            let url = format!("http://{}/whep/{}", server.addr, c.id);
            set.spawn(async move {
                let l = WhepListener::connect(&url, Some(&c.token), ClientOptions::default())
                    .await
                    .expect("WHEP connect");
                assert!(
                    l.wait_connected(Duration::from_secs(20)).await,
                    "listener did not connect"
                );
                l
            });
        }
        while let Some(r) = set.join_next().await {
            listeners.push(r.expect("listener"));
        }
    }
    eprintln!(
        "soak: {} listeners connected in {:?}",
        listeners.len(),
        t_connect.elapsed()
    );
    let mut rx: Vec<RxStats> = (0..listeners.len()).map(|_| RxStats::default()).collect();

    // The control load.
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let ctl = Arc::new(Control::default());
    let mut load = tokio::task::JoinSet::new();
    for i in 0..cfg.control_clients {
        load.spawn(engineer_load(
            url.clone(),
            clients.clone(),
            cfg.clone(),
            i,
            stop.clone(),
            ctl.clone(),
            t0,
        ));
    }
    load.spawn(performer_load(
        url.clone(),
        clients.clone(),
        stop.clone(),
        ctl.clone(),
    ));

    // Sampling.
    let start = sample(&server, t0).await;
    let mut samples = vec![start.clone()];
    let mut warm: Option<Sample> = None;
    let mut warm_rss: Vec<u64> = Vec::new();
    let end_at = t0 + Duration::from_secs(cfg.seconds);
    let mut next = t0 + cfg.sample_every;
    while Instant::now() < end_at {
        tokio::time::sleep_until(next.min(end_at).into()).await;
        next += cfg.sample_every;
        for (s, l) in rx.iter_mut().zip(&listeners) {
            s.drain(l);
        }
        let s = sample(&server, t0).await;
        if s.t >= cfg.warmup as f64 && warm_rss.len() < 3 {
            warm_rss.push(s.proc.rss_kb);
            if warm.is_none() {
                warm = Some(s.clone());
            }
        }
        let packets: u64 = rx.iter().map(|r| r.packets).sum();
        eprintln!(
            "soak t={:>6.0}s rss {:>7} kB fds {:>4} thr {:>3} | under {} over {} indrop {} | frames dropped {} pkts dropped {} | enc p99 {:.3} ms | rx {} pkts, lost {}, skipped {} | ctl sent {} acked {} err {}",
            s.t,
            s.proc.rss_kb,
            s.proc.fds,
            s.proc.threads,
            s.underruns - start.underruns,
            s.overruns - start.overruns,
            s.input_dropped - start.input_dropped,
            s.frames_dropped - start.frames_dropped,
            s.packets_dropped - start.packets_dropped,
            s.encode_p99 * 1e3,
            packets,
            rx.iter().map(|r| r.lost).sum::<u64>(),
            rx.iter().map(|r| r.skipped).sum::<u64>(),
            ctl.sent.load(Ordering::Relaxed),
            ctl.acked.load(Ordering::Relaxed),
            ctl.errors.load(Ordering::Relaxed),
        );
        samples.push(s);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    // End RSS: the mean of the last three samples, against the mean of the first three
    // after the warm-up (one sample is one moment of an allocator that breathes).
    let end_rss: Vec<u64> = samples
        .iter()
        .rev()
        .take(3)
        .map(|s| s.proc.rss_kb)
        .collect();
    let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
    let warm_rss_kb = if warm_rss.is_empty() {
        start.proc.rss_kb as f64
    } else {
        mean(&warm_rss)
    };
    let end_rss_kb = mean(&end_rss);
    let growth = (end_rss_kb - warm_rss_kb) / warm_rss_kb * 100.0;
    let end = samples.last().cloned().unwrap_or(start.clone());
    let warm = warm.unwrap_or(start.clone());

    stop.store(true, Ordering::Relaxed);
    while let Some(r) = load.join_next().await {
        r.expect("control task");
    }
    for (s, l) in rx.iter_mut().zip(&listeners) {
        s.drain(l);
    }
    let decode_errors: u64 = listeners.iter().map(|l| l.decode_errors()).sum();
    let silent_at_end = rx.iter().filter(|r| r.recent == 0).count();
    // Stop listening the WHEP way; the server must be back to no listener.
    let mut delete_failures = 0;
    for l in &listeners {
        if l.delete().await.map_or(true, |s| s != 200) {
            delete_failures += 1;
        }
        l.close().await;
    }
    let t = Instant::now();
    let mut left = f64::NAN;
    while t.elapsed() < Duration::from_secs(10) {
        left = must(&metrics(server.addr).await, "monmix_stream_listeners");
        if left == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = std::fs::read_to_string(&server.stderr_log).unwrap_or_default();
    let panics = log.lines().filter(|l| l.contains("panicked")).count();
    let exit = server.terminate();

    let mut acks = ctl.ack_us.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let ack_p50 = percentile(&mut acks, 0.5);
    let ack_p99 = percentile(&mut acks, 0.99);
    let secs_measured = elapsed;
    let expected = (secs_measured * 100.0) as u64;
    let min_packets = rx.iter().map(|r| r.packets).min().unwrap_or(0);
    let total_packets: u64 = rx.iter().map(|r| r.packets).sum();
    let lost: u64 = rx.iter().map(|r| r.lost).sum();
    let skipped: u64 = rx.iter().map(|r| r.skipped).sum();
    let max_gap = rx.iter().map(|r| r.max_gap).max().unwrap_or_default();
    let min_rms = rx.iter().map(RxStats::rms).fold(f64::INFINITY, f64::min);
    let d = |a: f64, b: f64| a - b;
    let underruns = d(end.underruns, start.underruns);
    let overruns = d(end.overruns, start.overruns);
    let input_dropped = d(end.input_dropped, start.input_dropped);

    let mut goals = Vec::new();
    let mut goal = |name: &str, value: Value, target: &str, pass: bool| {
        goals.push((name.to_owned(), value, target.to_owned(), pass));
    };
    let x = cfg.max_xruns;
    let xgoal = if x == 0.0 {
        "0".to_owned()
    } else {
        format!("<= {x}")
    };
    goal("engine underruns", json!(underruns), &xgoal, underruns <= x);
    goal("engine overruns", json!(overruns), &xgoal, overruns <= x);
    goal(
        "input frames dropped",
        json!(input_dropped),
        &xgoal,
        input_dropped <= x,
    );
    goal(
        "RSS growth after warm-up (%)",
        json!((growth * 100.0).round() / 100.0),
        &format!("< {}", cfg.max_rss_growth_pct),
        growth < cfg.max_rss_growth_pct,
    );
    goal(
        "decode errors",
        json!(decode_errors),
        "0",
        decode_errors == 0,
    );
    goal(
        "control errors",
        json!(ctl.errors.load(Ordering::Relaxed)),
        "0",
        ctl.errors.load(Ordering::Relaxed) == 0,
    );
    goal(
        "listeners silent at the end",
        json!(silent_at_end),
        "0",
        silent_at_end == 0,
    );
    goal(
        "listeners left after DELETE",
        json!(left),
        "0",
        left == 0.0 && delete_failures == 0,
    );
    goal(
        "clean exit (code, panics)",
        json!([exit, panics]),
        "[0, 0]",
        exit == Some(0) && panics == 0,
    );
    let failed: Vec<String> = goals
        .iter()
        .filter(|g| !g.3)
        .map(|g| format!("{}: {} (goal {})", g.0, g.1, g.2))
        .collect();

    let report = json!({
        "config": {
            "seconds": cfg.seconds, "listeners": cfg.listeners, "warmup_s": cfg.warmup,
            "control_rate_mean": cfg.control_rate, "control_clients": cfg.control_clients,
            "reconnect_every_s": cfg.reconnect_every.as_secs(),
            "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        },
        "server": {
            "underruns": underruns, "overruns": overruns, "input_dropped": input_dropped,
            "late_ticks": d(end.late_ticks, start.late_ticks),
            "tap_drops": d(end.tap_drops, start.tap_drops),
            "frames_dropped": d(end.frames_dropped, start.frames_dropped),
            "packets_dropped": d(end.packets_dropped, start.packets_dropped),
            "encode_p50_ms": end.encode_p50 * 1e3, "encode_p99_ms": end.encode_p99 * 1e3,
            "internal_latency_p99_ms": end.latency_p99 * 1e3,
            "max_tick_ms": end.max_tick / 1e6,
            "rss_start_kb": start.proc.rss_kb, "rss_warm_kb": warm_rss_kb, "rss_end_kb": end_rss_kb,
            "rss_max_kb": samples.iter().map(|s| s.proc.rss_kb).max(),
            "rss_growth_pct": growth,
            "fds_warm": warm.proc.fds, "fds_end": end.proc.fds,
            "threads_warm": warm.proc.threads, "threads_end": end.proc.threads,
            "exit_code": exit, "panics": panics,
        },
        "listeners": {
            "count": listeners.len(), "packets": total_packets,
            "expected_per_listener": expected, "min_packets": min_packets,
            "lost_by_seq": lost, "skipped_by_timestamp": skipped,
            "max_arrival_gap_ms": max_gap.as_secs_f64() * 1e3,
            "decode_errors": decode_errors, "min_rms": min_rms,
            "silent_at_end": silent_at_end,
        },
        "control": {
            "sent": ctl.sent.load(Ordering::Relaxed), "acked": ctl.acked.load(Ordering::Relaxed),
            "errors": ctl.errors.load(Ordering::Relaxed),
            "first_error": ctl.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            "engineer_reconnects": ctl.reconnects.load(Ordering::Relaxed),
            "performer_sessions": ctl.performer_sessions.load(Ordering::Relaxed),
            "ack_p50_ms": ack_p50 as f64 / 1e3, "ack_p99_ms": ack_p99 as f64 / 1e3,
        },
        "goals": goals.iter().map(|g| json!({"name": g.0, "value": g.1, "goal": g.2, "pass": g.3})).collect::<Vec<_>>(),
        "pass": failed.is_empty(),
        "samples": samples.iter().map(Sample::json).collect::<Vec<_>>(),
    });

    // The human table.
    let mut out = String::new();
    out += &format!(
        "\n== soak: {} listeners, {:.0} s, {} build ==\n",
        listeners.len(),
        elapsed,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let row = |k: &str, v: String| format!("  {k:<38} {v}\n");
    out += &row(
        "encode p50 / p99",
        format!(
            "{:.3} / {:.3} ms",
            end.encode_p50 * 1e3,
            end.encode_p99 * 1e3
        ),
    );
    out += &row(
        "internal latency p99",
        format!("{:.3} ms", end.latency_p99 * 1e3),
    );
    out += &row(
        "RSS start / warm / end / max",
        format!(
            "{} / {:.0} / {:.0} / {} kB",
            start.proc.rss_kb,
            warm_rss_kb,
            end_rss_kb,
            samples.iter().map(|s| s.proc.rss_kb).max().unwrap_or(0)
        ),
    );
    out += &row(
        "fds / threads warm -> end",
        format!(
            "{} -> {} / {} -> {}",
            warm.proc.fds, end.proc.fds, warm.proc.threads, end.proc.threads
        ),
    );
    out += &row(
        "late ticks / tap drops",
        format!(
            "{} / {}",
            d(end.late_ticks, start.late_ticks),
            d(end.tap_drops, start.tap_drops)
        ),
    );
    out += &row(
        "frames dropped (encoder behind)",
        format!("{}", d(end.frames_dropped, start.frames_dropped)),
    );
    out += &row(
        "packets dropped (peer queue full)",
        format!("{}", d(end.packets_dropped, start.packets_dropped)),
    );
    out += &row(
        "rx packets (min per listener / expected)",
        format!("{total_packets} ({min_packets} / {expected})"),
    );
    out += &row(
        "rx lost (seq) / skipped (ts)",
        format!("{lost} / {skipped}"),
    );
    out += &row(
        "rx max arrival gap",
        format!("{:.1} ms", max_gap.as_secs_f64() * 1e3),
    );
    out += &row(
        "control sent / acked",
        format!(
            "{} / {} (ack p50 {:.2} ms, p99 {:.2} ms)",
            ctl.sent.load(Ordering::Relaxed),
            ctl.acked.load(Ordering::Relaxed),
            ack_p50 as f64 / 1e3,
            ack_p99 as f64 / 1e3
        ),
    );
    out += &row(
        "reconnects (engineer / performer)",
        format!(
            "{} / {}",
            ctl.reconnects.load(Ordering::Relaxed),
            ctl.performer_sessions.load(Ordering::Relaxed)
        ),
    );
    out += "  goals:\n";
    for g in &goals {
        out += &format!(
            "    [{}] {:<34} {} (goal {})\n",
            if g.3 { "ok" } else { "FAIL" },
            g.0,
            g.1,
            g.2
        );
    }
    println!("{out}");
    if let Some(dir) = cfg.report.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(
        &cfg.report,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .expect("write the report");
    std::fs::write(cfg.report.with_extension("txt"), &out).expect("write the table");
    println!("report: {}", cfg.report.display());
    (report, failed)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The short soak CI runs (see the module docs for the figures chosen).
#[test]
fn soak_ci() {
    let _solo = crate::solo();
    let cfg = SoakConfig {
        seconds: 40,
        listeners: 16,
        warmup: 10,
        sample_every: Duration::from_secs(2),
        control_rate: 20.0,
        control_clients: 4,
        reconnect_every: Duration::from_secs(10),
        max_rss_growth_pct: 15.0,
        // A quarter of the 4,000 frames: a debug build next to other jobs on two cores
        // gets starved (measured: 75 and 211 underruns while a release build ran
        // alongside, load average 7). The goal of 0 is judged by scripts/soak in release;
        // this catches an input or engine that stops (every frame an underrun).
        max_xruns: 1000.0,
        report: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("soak-ci-report.json"),
    };
    let (report, failed) = runtime().block_on(run_soak(cfg));
    assert!(failed.is_empty(), "soak goals missed: {failed:#?}");
    // The load really ran: changes went through, sessions reconnected, audio flowed.
    assert!(
        report["control"]["acked"].as_u64().unwrap_or(0) > 300,
        "{report}"
    );
    assert!(
        report["control"]["engineer_reconnects"]
            .as_u64()
            .unwrap_or(0)
            >= 4
    );
    assert!(report["listeners"]["min_rms"].as_f64().unwrap_or(0.0) > 1e-3);
}

/// The long soak, configured by `SOAK_*` variables; run by `scripts/soak`.
#[test]
#[ignore = "long-running; scripts/soak runs it in release"]
fn soak() {
    let _solo = crate::solo();
    let cfg = SoakConfig::from_env();
    let (_, failed) = runtime().block_on(run_soak(cfg));
    assert!(failed.is_empty(), "soak goals missed: {failed:#?}");
}
