//! A listener whose peer goes away without a WHEP DELETE is noticed (ICE/DTLS) and its
//! session, encoder and tap are freed.

use crate::common::whep_client;

use std::time::{Duration, Instant};

use crate::common::whep_listener::ClientOptions;
use monmix::stream::StreamOptions;
use whep_client::{mix, params, wait_until, Bench, BenchConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_peer_frees_its_session() {
    let bench = Bench::start(BenchConfig {
        stream: StreamOptions {
            shards: 1,
            ..StreamOptions::default()
        },
        ..BenchConfig::default()
    })
    .await;
    bench
        .engine
        .publish(params(vec![Some(mix(&[(0, 1.0, 0.0)], 8))]));
    let l = bench
        .listen("alice", "tok-a", ClientOptions::default())
        .await;
    assert!(wait_until(Duration::from_secs(2), || l.packets() > 0).await);
    assert_eq!(bench.service.active_encoders(), 1);
    let t = Instant::now();
    l.close().await; // no DELETE
    assert!(
        wait_until(Duration::from_secs(5), || bench.service.sessions() == 0).await,
        "session not ended within 5 s"
    );
    eprintln!("peer close noticed after {:?}", t.elapsed());
    assert!(
        wait_until(Duration::from_secs(2), || bench.service.active_encoders()
            == 0)
        .await
    );
    bench.stop().await;
}
