//! The shard transport seen from outside: packet pacing at the receiver, garbage and floods
//! on the shared UDP socket, a listener that never completes ICE.

use crate::common::fft;
use crate::common::whep_client;
use crate::common::whep_listener;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::common::whep_listener::{http_request, pcm_of, ClientOptions, WhepListener};
use fft::{assert_absent, assert_level, channel, tone_level_dbfs};
use monmix::stream::StreamStats;
use whep_client::{mix, params, wait_until, Bench, BenchConfig};

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Inter-arrival times (ms) of the packets a listener got, sorted.
fn inter_arrivals(l: &WhepListener) -> Vec<f64> {
    inter_arrivals_of(&l.take_frames())
}

/// Packets arrive one frame apart. Bounds are generous (CI shares its cores with builds;
/// the receiver is a tokio task): the tight figures are in BENCHMARKS.md (whep_listeners).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_arrive_evenly_paced_at_one_and_at_many_listeners() {
    let _solo = crate::solo();
    let bench = Bench::start(BenchConfig {
        max_mixes: 16,
        max_taps: 32,
        clients: (0..16)
            .map(|i| (format!("c{i}"), format!("t{i}"), i))
            .collect(),
        ..BenchConfig::default()
    })
    .await;
    bench.engine.publish(params(
        (0..16)
            .map(|i| Some(mix(&[(i % 8, 1.0, 0.0)], 8)))
            .collect(),
    ));
    let opts = ClientOptions {
        decode: false,
        record_arrivals: true,
        ..ClientOptions::default()
    };
    for n in [1usize, 16] {
        let mut ls = Vec::new();
        for i in 0..n {
            ls.push(
                bench
                    .listen(&format!("c{i}"), &format!("t{i}"), opts.clone())
                    .await,
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for l in &ls {
            l.take_frames();
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let d = inter_arrivals(&ls[0]);
        assert!(d.len() > 250, "{} packets in 3 s", d.len() + 1);
        let (p50, p99, max) = (quantile(&d, 0.5), quantile(&d, 0.99), d[d.len() - 1]);
        eprintln!("{n} listeners: inter-arrival p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms");
        assert!((8.5..11.5).contains(&p50), "p50 {p50:.2} ms");
        assert!(p99 < 25.0, "p99 {p99:.2} ms");
        assert!(max < 60.0, "max {max:.2} ms");
        for l in ls {
            l.close().await;
        }
        assert!(wait_until(Duration::from_secs(5), || bench.service.sessions() == 0).await);
    }
    bench.stop().await;
}

fn stun_request(ufrag: &str) -> Vec<u8> {
    let user = format!("{ufrag}:remote");
    let mut attr = vec![0x00, 0x06];
    attr.extend_from_slice(&(user.len() as u16).to_be_bytes());
    attr.extend_from_slice(user.as_bytes());
    while attr.len() % 4 != 0 {
        attr.push(0);
    }
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    m.extend_from_slice(&rand::random::<[u8; 12]>());
    m.extend_from_slice(&attr);
    m
}

/// Garbage, STUN for an unknown ufrag, truncated DTLS and a flood from one address are
/// dropped and counted; the listener already connected misses no packet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_floods_on_the_shared_socket_cost_a_listener_nothing() {
    let _solo = crate::solo();
    let bench = Bench::start(BenchConfig {
        stream: monmix::stream::StreamOptions {
            shards: 1,
            ..monmix::stream::StreamOptions::default()
        },
        ..BenchConfig::default()
    })
    .await;
    bench
        .engine
        .publish(params(vec![Some(mix(&[(0, 1.0, 0.0)], 8))]));
    let l = bench
        .listen(
            "alice",
            "tok-a",
            ClientOptions {
                decode: false,
                record_arrivals: true,
                ..ClientOptions::default()
            },
        )
        .await;
    assert!(wait_until(Duration::from_secs(2), || l.packets() > 10).await);
    l.take_frames();
    let targets = bench.service.udp_addrs();
    let stats = bench.service.stats().clone();
    let unknown0 = StreamStats::get(&stats.datagrams_unknown);
    let flood = std::thread::spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let kinds: Vec<Vec<u8>> = vec![
            b"garbage".to_vec(),
            vec![0u8; 1400],
            stun_request("nobody12"),
            stun_request("nobody12")[..24].to_vec(),
            // A DTLS handshake record header with its body cut off.
            vec![0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0x00],
            // An RTP-looking packet from a stranger.
            [vec![0x80, 111, 0, 1], vec![0; 40]].concat(),
        ];
        let until = Instant::now() + Duration::from_secs(2);
        let mut sent = 0u64;
        while Instant::now() < until {
            for k in &kinds {
                for t in &targets {
                    if s.send_to(k, t).is_ok() {
                        sent += 1;
                    }
                }
            }
            if sent % 600 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        sent
    });
    let sent = tokio::task::spawn_blocking(move || flood.join().expect("flood"))
        .await
        .expect("join");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frames = l.take_frames();
    let unknown = StreamStats::get(&stats.datagrams_unknown) - unknown0;
    eprintln!(
        "flood: {sent} datagrams sent, {unknown} counted unknown, listener got {} packets",
        frames.len()
    );
    assert!(unknown > 1000, "only {unknown} of {sent} counted");
    // Every packet during the flood arrived: sequence numbers are contiguous.
    assert!(frames.len() >= 200, "{} packets in 2.3 s", frames.len());
    let gaps: Vec<_> = frames
        .windows(2)
        .filter(|w| w[1].seq != w[0].seq.wrapping_add(1))
        .map(|w| (w[0].seq, w[1].seq))
        .collect();
    assert!(gaps.is_empty(), "listener missed packets: {gaps:?}");
    assert!(!l.is_closed());
    l.close().await;
    bench.stop().await;
}

/// A WHEP session whose peer never does ICE frees its listener slot within 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_never_connects_is_freed_within_10_s() {
    let _solo = crate::solo();
    let bench = Bench::start(BenchConfig::default()).await;
    let offer = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/corpus/sdp_offer/chrome_recvonly.sdp"
    ))
    .expect("offer");
    let t = Instant::now();
    let r = http_request(
        "POST",
        &bench.url("alice"),
        Some("tok-a"),
        Some(("application/sdp", &offer)),
        Duration::from_secs(5),
    )
    .await
    .expect("POST");
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(bench.service.sessions(), 1);
    assert!(
        wait_until(Duration::from_secs(11), || bench.service.sessions() == 0).await,
        "session still open"
    );
    let freed = t.elapsed();
    eprintln!("never-connected session freed after {freed:?}");
    assert!(freed <= Duration::from_secs(10), "{freed:?}");
    assert!(
        wait_until(Duration::from_secs(1), || bench.service.active_encoders()
            == 0)
        .await
    );
    assert_eq!(
        StreamStats::get(&bench.service.stats().peers_connect_timeout),
        1
    );
    bench.stop().await;
}

/// 5 ms and 2.5 ms frames reach the (independent) Rust listener at their packet rate, and
/// decode to the right tone, level and side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smaller_frames_stream_at_their_rate_with_the_right_audio() {
    let _solo = crate::solo();
    for frame_len in [240usize, 120] {
        let bench = Bench::start(BenchConfig {
            frame_len,
            ..BenchConfig::default()
        })
        .await;
        bench
            .engine
            .publish(params(vec![Some(mix(&[(0, 1.0, -1.0)], 8))]));
        let l = bench
            .listen("alice", "tok-a", ClientOptions::default())
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        l.take_frames();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let frames = l.take_frames();
        let want = 1.5 * 48_000.0 / frame_len as f64;
        assert!(
            (frames.len() as f64 - want).abs() < want * 0.1,
            "{frame_len}-sample frames: {} packets in 1.5 s, want {want}",
            frames.len()
        );
        assert!(frames.iter().all(|f| f.pcm.len() == 2 * frame_len));
        let d = inter_arrivals_of(&frames);
        let period = frame_len as f64 / 48.0;
        let p50 = quantile(&d, 0.5);
        eprintln!(
            "{period} ms frames: inter-arrival p50 {p50:.2} ms, p99 {:.2} ms, max {:.2} ms",
            quantile(&d, 0.99),
            d[d.len() - 1]
        );
        assert!((p50 - period).abs() < 1.0, "p50 {p50:.2} ms");
        let pcm = pcm_of(&frames);
        let (left, right) = (channel(&pcm, 2, 0), channel(&pcm, 2, 1));
        assert_level("310 Hz on L", tone_level_dbfs(&left, 310.0), -20.0, 1.0);
        assert_absent("310 Hz on R", tone_level_dbfs(&right, 310.0), -60.0);
        l.close().await;
        bench.stop().await;
    }
}

fn inter_arrivals_of(f: &[whep_listener::ReceivedFrame]) -> Vec<f64> {
    let mut d: Vec<f64> = f
        .windows(2)
        .map(|w| (w[1].arrival - w[0].arrival).as_secs_f64() * 1e3)
        .collect();
    d.sort_by(f64::total_cmp);
    d
}
