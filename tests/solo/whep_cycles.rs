//! Leak check: 200 connect/disconnect cycles return fds, threads and memory to baseline,
//! and leave no encoder behind. Both ends run in this process, so a leak on either shows.
//! (In `tests/solo`, alone: a parallel test would move the process-wide figures.)

use crate::common::whep_client;

use std::time::{Duration, Instant};

use crate::common::proc_stats::ProcStats;
use crate::common::whep_listener::ClientOptions;
use monmix::stream::{StreamOptions, StreamStats};
use whep_client::{mix, params, wait_until, Bench, BenchConfig};

/// Tolerances, after a warm-up that grows the allocator's and tokio's pools to size.
const FD_TOLERANCE: i64 = 8;
const THREAD_TOLERANCE: i64 = 4;
const RSS_TOLERANCE_KB: i64 = 20 * 1024;
const CYCLES: usize = 200;
const WARM_UP: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_disconnect_cycles_do_not_leak() {
    let _solo = crate::solo();
    let bench = Bench::start(BenchConfig {
        stream: StreamOptions {
            shards: 2,
            ..StreamOptions::default()
        },
        ..BenchConfig::default()
    })
    .await;
    bench.engine.publish(params(vec![
        Some(mix(&[(0, 1.0, 0.0)], 8)),
        Some(mix(&[(1, 1.0, 0.0)], 8)),
    ]));
    let stats = bench.service.stats().clone();
    // Each cycle: connect, wait for audio, DELETE, close the client peer. (A peer that
    // vanishes without DELETE is freed too, after ICE notices: see the next test.)
    let cycle = |i: usize| {
        let bench = &bench;
        async move {
            let (client, token) = if i % 2 == 0 {
                ("alice", "tok-a")
            } else {
                ("bob", "tok-b")
            };
            let l = bench
                .listen(
                    client,
                    token,
                    ClientOptions {
                        decode: false,
                        ..ClientOptions::default()
                    },
                )
                .await;
            assert!(
                wait_until(Duration::from_secs(2), || l.packets() > 0).await,
                "cycle {i}: no packet"
            );
            assert_eq!(l.delete().await.expect("delete"), 200, "cycle {i}");
            l.close().await;
        }
    };
    for i in 0..WARM_UP {
        cycle(i).await;
    }
    assert!(
        wait_until(Duration::from_secs(5), || bench.service.active_encoders()
            == 0)
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = ProcStats::of_self();
    let t0 = Instant::now();
    for i in 0..CYCLES {
        cycle(i).await;
    }
    let took = t0.elapsed();
    assert!(
        wait_until(Duration::from_secs(5), || bench.service.active_encoders()
            == 0
            && bench.service.sessions() == 0)
        .await,
        "encoders or sessions left: {} {}",
        bench.service.active_encoders(),
        bench.service.sessions()
    );
    assert_eq!(StreamStats::get(&stats.active_mixes), 0);
    assert_eq!(StreamStats::get(&stats.listeners), 0);
    // Let closing peers' tasks finish and sockets close.
    let mut end = ProcStats::of_self();
    let settle = Instant::now() + Duration::from_secs(5);
    while Instant::now() < settle
        && ((end.fds as i64 - base.fds as i64) > FD_TOLERANCE
            || (end.threads as i64 - base.threads as i64) > THREAD_TOLERANCE)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        end = ProcStats::of_self();
    }
    eprintln!("{CYCLES} cycles in {took:?}; before {base:?}, after {end:?}");
    assert!(
        end.fds as i64 - base.fds as i64 <= FD_TOLERANCE,
        "fds {} -> {}",
        base.fds,
        end.fds
    );
    assert!(
        end.threads as i64 - base.threads as i64 <= THREAD_TOLERANCE,
        "threads {} -> {}",
        base.threads,
        end.threads
    );
    assert!(
        end.rss_kb as i64 - base.rss_kb as i64 <= RSS_TOLERANCE_KB,
        "RSS {} kB -> {} kB",
        base.rss_kb,
        end.rss_kb
    );
    assert_eq!(
        StreamStats::get(&stats.sessions_opened),
        (CYCLES + WARM_UP) as u64
    );
    bench.stop().await;
}
