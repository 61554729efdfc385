//! WHEP listeners per core: N listeners, each on its own mix of 32 tone channels, served by
//! the real engine + stream shards (str0m, sendmmsg); CPU per listener-second against bare
//! libopus encoding of the same frames.
//!
//! The server runs in a child process (this same binary, `MONMIX_BENCH_SERVER=1`), so the
//! listeners' cost (WebRTC receive, in the parent) is not counted. The child measures its
//! own threads' on-CPU time from `/proc/self/task/*/schedstat` (ns, per thread name) and
//! exposes it, with its stream stats, on `GET /bench/stats`.
//!
//! `cargo bench --bench whep_listeners` (env: `MONMIX_BENCH_N=1,16,64,128`,
//! `MONMIX_BENCH_SECS=10`, `MONMIX_BENCH_PERF=FILE` to `perf record` the child at N=64).

#[path = "../tests/common/feeder.rs"]
mod feeder;
#[path = "../tests/common/proc_stats.rs"]
mod proc_stats;
#[path = "../tests/common/whep_listener.rs"]
mod whep_listener;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::feeder::Feeder;
use crate::proc_stats::ProcStats;
use crate::whep_listener::{http_request, ClientOptions, WhepListener};
use axum::routing::{get, post};
use monmix::engine::{ChannelParams, Engine, EngineOptions, EngineParams, MixParams};
use monmix::stream::encoder::{EncoderConfig, MixEncoder};
use monmix::stream::whep::{self, AuthError, WhepBackend};
use monmix::stream::{StreamOptions, StreamService, StreamStats};

const CHANNELS: usize = 32;
const FRAME_LEN: usize = 480;
const MAX_N: usize = 128;

fn main() {
    if std::env::var_os("MONMIX_BENCH_SERVER").is_some() {
        server_main();
    } else {
        parent_main();
    }
}

// ---------------------------------------------------------------- server (child process)

struct Backend;

impl WhepBackend for Backend {
    fn authorize(&self, client_id: &str, bearer: Option<&str>) -> Result<usize, AuthError> {
        let slot: usize = client_id
            .strip_prefix('c')
            .and_then(|s| s.parse().ok())
            .filter(|&s| s < MAX_N)
            .ok_or(AuthError::UnknownClient)?;
        (bearer == Some(format!("t{slot}").as_str()))
            .then_some(slot)
            .ok_or(AuthError::Unauthorized)
    }

    fn listening_changed(&self, _: &str, _: bool) {}
}

/// A different mix per slot: all 32 channels, gains and pans varying with the slot.
fn unique_mix(slot: usize) -> MixParams {
    let channels = (0..CHANNELS)
        .map(|c| ChannelParams {
            gain: 0.1 + 0.06 * ((slot * 7 + c * 3) % 11) as f32,
            pan: ((slot + c) % 9) as f32 / 4.0 - 1.0,
            subscribed: true,
            muted: false,
            soloed: false,
        })
        .collect();
    MixParams {
        channels,
        master: 0.5,
    }
}

/// On-CPU ns of every thread of this process, by thread name.
fn thread_cpu() -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let p = e.path();
        let name = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let ns: u64 = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        *out.entry(name.trim().to_owned()).or_insert(0) += ns;
    }
    out
}

fn this_thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn server_main() {
    let (feeder, r) = Feeder::start(CHANNELS, FRAME_LEN);
    let engine = Engine::spawn(
        EngineOptions {
            channels: CHANNELS,
            frame_len: FRAME_LEN,
            max_mixes: MAX_N,
            max_taps: MAX_N + 8,
        },
        r,
    )
    .expect("engine");
    engine.publish(EngineParams::new(
        (0..MAX_N).map(|s| Some(unique_mix(s))).collect(),
    ));

    // Baseline: bare libopus on the very frames the engine produces for a mix.
    let mut tap = engine.attach(0).expect("tap");
    let mut frames = Vec::new();
    let mut buf = vec![0.0f32; 2 * FRAME_LEN];
    while frames.len() < 200 {
        if tap.recv(&mut buf, Instant::now() + Duration::from_secs(1)) {
            frames.push(buf.clone());
        }
    }
    drop(tap);
    let mut enc = MixEncoder::new(&EncoderConfig::default()).expect("encoder");
    let c0 = this_thread_cpu_ns();
    let reps = 10;
    for _ in 0..reps {
        for f in &frames {
            std::hint::black_box(enc.encode(f).expect("encode"));
        }
    }
    let bare_ns = (this_thread_cpu_ns() - c0) / (reps * frames.len()) as u64;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("srv-rt")
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let service = StreamService::with_str0m(
            engine.clone(),
            StreamOptions {
                max_listeners: 4 * MAX_N,
                ..StreamOptions::default()
            },
        )
        .expect("service");
        let s2 = service.clone();
        let s3 = service.clone();
        let app = whep::router(service.clone(), Arc::new(Backend))
            .route(
                "/bench/stats",
                get(move || {
                    let st = s2.stats().clone();
                    async move {
                        let mut out = String::new();
                        out += &format!("bare_encode_ns {bare_ns}\nrss_kb {}\n", ProcStats::of_self().rss_kb);
                        for (k, v) in thread_cpu() {
                            out += &format!("thread {} {v}\n", k.replace(' ', "_"));
                        }
                        let g = StreamStats::get;
                        out += &format!(
                            "latency_p50_ns {}\nlatency_p99_ns {}\nencode_p50_ns {}\nencode_p99_ns {}\n",
                            st.internal_latency.quantile(0.5).as_nanos(),
                            st.internal_latency.quantile(0.99).as_nanos(),
                            st.encode_time.quantile(0.5).as_nanos(),
                            st.encode_time.quantile(0.99).as_nanos()
                        );
                        out += &format!(
                            "packets_sent {}\npackets_dropped {}\nframes_dropped {}\nframes_encoded {}\nlisteners {}\nactive_mixes {}\n",
                            g(&st.packets_sent),
                            g(&st.packets_dropped),
                            g(&st.frames_dropped),
                            g(&st.frames_encoded),
                            g(&st.listeners),
                            g(&st.active_mixes)
                        );
                        out
                    }
                }),
            )
            .route(
                "/bench/reset",
                post(move || {
                    s3.stats().internal_latency.reset();
                    s3.stats().encode_time.reset();
                    async { "ok" }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        println!("PORT {port}");
        std::io::stdout().flush().expect("stdout");
        // The parent holds our stdin: EOF means it is done (or gone).
        std::thread::spawn(|| {
            let mut s = String::new();
            while std::io::stdin().read_line(&mut s).is_ok_and(|n| n > 0) {
                s.clear();
            }
            std::process::exit(0);
        });
        drop(axum::serve(listener, app).await);
    });
    drop(feeder);
}

// ---------------------------------------------------------------- parent (listeners)

struct Snapshot {
    values: BTreeMap<String, u64>,
    threads: BTreeMap<String, u64>,
}

async fn snapshot(origin: &str) -> Snapshot {
    let r = http_request(
        "GET",
        &format!("{origin}/bench/stats"),
        None,
        None,
        Duration::from_secs(5),
    )
    .await
    .expect("stats");
    let mut values = BTreeMap::new();
    let mut threads = BTreeMap::new();
    for line in r.body.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["thread", name, v] => {
                threads.insert((*name).to_owned(), v.parse().unwrap_or(0));
            }
            [k, v] => {
                values.insert((*k).to_owned(), v.parse().unwrap_or(0));
            }
            _ => {}
        }
    }
    Snapshot { values, threads }
}

fn group(thread: &str) -> &'static str {
    if thread.starts_with("monmix-engine") {
        "engine"
    } else if thread.starts_with("monmix-shard") {
        "shards"
    } else if thread.starts_with("srv-rt") {
        "async"
    } else if thread.starts_with("bench-tones") {
        "input"
    } else {
        "other"
    }
}

fn parent_main() {
    let ns: Vec<usize> = std::env::var("MONMIX_BENCH_N")
        .unwrap_or_else(|_| "1,16,64,128".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|n| (1..=MAX_N).contains(n))
        .collect();
    let secs: u64 = std::env::var("MONMIX_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let perf_out = std::env::var("MONMIX_BENCH_PERF").ok();
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .env("MONMIX_BENCH_SERVER", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let child_pid = child.id();
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("server port");
    let port: u16 = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .expect("PORT line");
    let origin = format!("http://127.0.0.1:{port}");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    rt.block_on(async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = snapshot(&origin).await;
        let bare_ns = idle.values["bare_encode_ns"];
        let idle_rss = idle.values["rss_kb"];
        println!(
            "server pid {child_pid}; bare libopus encode: {:.1} µs/frame = {:.3} % of a core per stream; idle RSS {idle_rss} kB",
            bare_ns as f64 / 1e3,
            bare_ns as f64 * 100.0 / 1e9 * 100.0
        );
        for &n in &ns {
            let mut ls = Vec::new();
            for i in 0..n {
                let l = WhepListener::connect(
                    &format!("{origin}/whep/c{i}"),
                    Some(&format!("t{i}")),
                    ClientOptions {
                        decode: false,
                record_arrivals: true,
                        timeout: Duration::from_secs(10),
                        ..ClientOptions::default()
                    },
                )
                .await
                .expect("connect");
                ls.push(l);
            }
            for l in &ls {
                assert!(l.wait_connected(Duration::from_secs(20)).await, "not connected");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(
                http_request("POST", &format!("{origin}/bench/reset"), None, None, Duration::from_secs(5))
                    .await,
            );
            let s0 = snapshot(&origin).await;
            for l in &ls {
                l.take_frames();
            }
            let p0: u64 = ls.iter().map(|l| l.packets()).sum();
            let t0 = Instant::now();
            let perf = (n == 64)
                .then_some(perf_out.as_deref())
                .flatten()
                .and_then(|file| {
                    Command::new("perf")
                        .args(["record", "-e", "cpu-clock", "-g", "-o", file, "-p"])
                        .arg(child_pid.to_string())
                        .args(["--", "sleep", &secs.min(5).to_string()])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .ok()
                });
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let s1 = snapshot(&origin).await;
            let dt = t0.elapsed().as_secs_f64();
            let p1: u64 = ls.iter().map(|l| l.packets()).sum();
            if let Some(mut p) = perf {
                drop(p.wait());
            }
            // Pacing at the receivers: inter-arrival of every listener's packets.
            let mut gaps: Vec<f64> = Vec::new();
            let mut worst_p99: f64 = 0.0;
            for l in &ls {
                let f = l.take_frames();
                let mut d: Vec<f64> = f
                    .windows(2)
                    .map(|w| (w[1].arrival - w[0].arrival).as_secs_f64() * 1e3)
                    .collect();
                d.sort_by(f64::total_cmp);
                if !d.is_empty() {
                    worst_p99 = worst_p99.max(d[(d.len() - 1) * 99 / 100]);
                }
                gaps.extend(d);
            }
            gaps.sort_by(f64::total_cmp);
            let q = |x: f64| gaps.get(((gaps.len().max(1) - 1) as f64 * x) as usize).copied().unwrap_or(0.0);
            let mut groups: BTreeMap<&str, f64> = BTreeMap::new();
            for (t, v1) in &s1.threads {
                let v0 = s0.threads.get(t).copied().unwrap_or(0);
                *groups.entry(group(t)).or_insert(0.0) += v1.saturating_sub(v0) as f64 / 1e9 / dt;
            }
            let g = |k: &str| groups.get(k).copied().unwrap_or(0.0);
            let serving = g("engine") + g("shards") + g("async") + g("other");
            let bare_core = bare_ns as f64 * 100.0 / 1e9; // core fraction per stream
            let per_listener = serving / n as f64;
            // Normalised by the frames actually encoded, so an overloaded run (frames
            // dropped) still compares like with like: serving CPU per encoded frame (one
            // frame = one listener's packet here, every listener has its own mix).
            let encoded = (s1.values["frames_encoded"] - s0.values["frames_encoded"]) as f64;
            let per_frame_ratio = serving * dt * 1e9 / encoded.max(1.0) / bare_ns as f64;
            let row = format!(
                "| {n} | {:.3} % | {:.2}× | {:.2}× | {:.0} | {:.2} / {:.2} / {:.2} / {:.2} | {:.2}× | {:.0} kB | {:.2} / {:.2} ms | {:.0} / {} |",
                per_listener * 100.0,
                per_listener / bare_core,
                per_frame_ratio,
                1.0 / per_listener,
                g("engine") * 100.0 / n as f64,
                g("shards") * 100.0 / n as f64,
                g("async") * 100.0 / n as f64,
                g("other") * 100.0 / n as f64,
                g("shards") / n as f64 / bare_core,
                s1.values["rss_kb"] as f64,
                s1.values["latency_p50_ns"] as f64 / 1e6,
                s1.values["latency_p99_ns"] as f64 / 1e6,
                (p1 - p0) as f64 / dt,
                n * 100,
            );
            println!("{row}");
            println!(
                "    pacing at the receivers: inter-arrival p50 {:.2} ms, p99 {:.2} ms (worst listener {:.2}), max {:.2} ms",
                q(0.5),
                q(0.99),
                worst_p99,
                gaps.last().copied().unwrap_or(0.0)
            );
            println!(
                "    drops: packets {} frames {}; encode p50/p99 {:.1}/{:.1} µs; RSS/listener {:.0} kB",
                s1.values["packets_dropped"],
                s1.values["frames_dropped"],
                s1.values["encode_p50_ns"] as f64 / 1e3,
                s1.values["encode_p99_ns"] as f64 / 1e3,
                (s1.values["rss_kb"] as f64 - idle_rss as f64) / n as f64
            );
            rows.push(row);
            for l in &ls {
                drop(l.delete().await);
                l.close().await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    println!();
    println!("| listeners | server CPU / listener | ratio vs bare encode (per listener-s) | ratio per encoded frame | listeners / core | engine / shards / async / other (% core per listener) | shard-thread ratio | server RSS | internal latency p50 / p99 | packets/s received / expected |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    drop(child.stdin.take());
    drop(child.wait());
}
