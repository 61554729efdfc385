//! Allocation guard around a shard's pass with 64 connected listeners, each on its own mix.
//!
//! The shard is driven by hand (`StreamOptions::manual`) on a thread of this test, under a
//! counting allocator that counts only that thread, only inside `run_pass`. What it
//! asserts: the shard's own work (tap reads, placement, batching, `sendmmsg`) adds nothing
//! per listener beyond what the WebRTC stack needs per packet, and the count does not grow
//! over time. str0m allocates inside `write`/SRTP/`poll_output` (see BENCHMARKS.md), so the
//! bound is per packet, not zero.

use crate::common::{alloc, whep_client};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::whep_listener::ClientOptions;
use monmix::stream::{StreamOptions, StreamStats};
use whep_client::{mix, params, wait_until, Bench, BenchConfig};

const N: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_pass_allocates_only_what_the_stack_needs_per_packet() {
    let bench = Bench::start(BenchConfig {
        max_mixes: N,
        max_taps: 2 * N,
        stream: StreamOptions {
            shards: 1,
            manual: true,
            max_listeners: 2 * N,
            ..StreamOptions::default()
        },
        clients: (0..N)
            .map(|i| (format!("c{i}"), format!("t{i}"), i))
            .collect(),
        ..BenchConfig::default()
    })
    .await;
    bench.engine.publish(params(
        (0..N).map(|i| Some(mix(&[(i % 8, 1.0, 0.0)], 8))).collect(),
    ));
    // The shard's thread: passes as the real one runs them, counting when asked.
    let svc = bench.service.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let (allocs, passes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let driver = {
        let (stop, counting) = (stop.clone(), counting.clone());
        let (allocs, passes) = (allocs.clone(), passes.clone());
        std::thread::spawn(move || {
            let mut shards = svc.take_manual_shards();
            while !stop.load(Ordering::Relaxed) {
                let on = counting.load(Ordering::Relaxed);
                let (next, n) = if on {
                    alloc::count(|| shards.run_pass())
                } else {
                    (shards.run_pass(), 0)
                };
                if on {
                    allocs.fetch_add(n, Ordering::Relaxed);
                    passes.fetch_add(1, Ordering::Relaxed);
                }
                let wait = next
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(1));
                std::thread::sleep(wait);
            }
        })
    };
    let opts = ClientOptions {
        decode: false,
        ..ClientOptions::default()
    };
    let mut ls = Vec::new();
    for i in 0..N {
        ls.push(
            bench
                .listen(&format!("c{i}"), &format!("t{i}"), opts.clone())
                .await,
        );
    }
    assert!(
        wait_until(Duration::from_secs(5), || ls
            .iter()
            .all(|l| l.packets() > 5))
        .await
    );
    let stats = bench.service.stats().clone();
    let mut per_packet = Vec::new();
    for _ in 0..2 {
        let sent0 = StreamStats::get(&stats.packets_sent);
        allocs.store(0, Ordering::Relaxed);
        passes.store(0, Ordering::Relaxed);
        counting.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(2)).await;
        counting.store(false, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sent = StreamStats::get(&stats.packets_sent) - sent0;
        let a = allocs.load(Ordering::Relaxed);
        assert!(sent > (N as u64) * 150, "only {sent} packets in 2 s");
        let pp = a as f64 / sent as f64;
        eprintln!(
            "{N} listeners: {a} allocations in {} passes for {sent} packets = {pp:.2} per packet",
            passes.load(Ordering::Relaxed)
        );
        per_packet.push(pp);
    }
    stop.store(true, Ordering::Relaxed);
    driver.join().expect("driver");
    // str0m: the RTP packet, its SRTP output and the datagram (plus RTCP now and then).
    assert!(
        per_packet.iter().all(|&p| p <= 6.0),
        "allocations per packet: {per_packet:?}"
    );
    // No growth: the second window allocates no more than the first (a leak or a table
    // that grows per tick would).
    assert!(
        per_packet[1] <= per_packet[0] * 1.2 + 0.1,
        "allocations grew: {per_packet:?}"
    );
    for l in ls {
        l.close().await;
    }
    bench.stop().await;
}
