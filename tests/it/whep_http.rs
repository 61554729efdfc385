//! WHEP HTTP behaviour: status codes, headers, limits, DELETE.

use crate::common::whep_client;

use std::time::Duration;

use crate::common::whep_listener::{http_request, ClientError, ClientOptions, WhepListener};
use monmix::stream::{StreamOptions, StreamStats};
use whep_client::{mix, params, wait_until, Bench, BenchConfig};

const T: Duration = Duration::from_secs(5);

const OPUS_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses() {
    let bench = Bench::start(BenchConfig::default()).await;
    let url = bench.url("alice");
    let sdp = Some(("application/sdp", OPUS_OFFER));

    let r = http_request("POST", &url, Some("wrong"), sdp, T)
        .await
        .expect("http");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = http_request("POST", &url, None, sdp, T)
        .await
        .expect("http");
    assert_eq!(r.status, 401);
    let r = http_request("POST", &bench.url("nobody"), Some("tok-a"), sdp, T)
        .await
        .expect("http");
    assert_eq!(r.status, 404);
    let r = http_request("POST", &bench.url("bad%20id"), Some("tok-a"), sdp, T)
        .await
        .expect("http");
    assert_eq!(r.status, 404);

    // Garbage, no audio, no Opus: 400 with a one-line reason.
    let no_opus = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let no_audio = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
    let opus_but_broken =
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\u{0}\u{1}";
    for (what, body) in [
        ("garbage", "hello, I am not SDP"),
        ("empty", ""),
        ("no opus", no_opus),
        ("no audio", no_audio),
        ("broken", opus_but_broken),
    ] {
        let r = http_request(
            "POST",
            &url,
            Some("tok-a"),
            Some(("application/sdp", body)),
            T,
        )
        .await
        .expect("http");
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert_eq!(r.body.trim_end().lines().count(), 1, "{what}: {:?}", r.body);
        assert!(!r.body.trim().is_empty());
    }
    let r = http_request(
        "POST",
        &url,
        Some("tok-a"),
        Some(("text/plain", OPUS_OFFER)),
        T,
    )
    .await
    .expect("http");
    assert_eq!(r.status, 415);
    let big = format!("v=0\r\n{}", "a=x\r\n".repeat(14_000));
    let r = http_request(
        "POST",
        &url,
        Some("tok-a"),
        Some(("application/sdp", &big)),
        T,
    )
    .await
    .expect("http");
    assert_eq!(r.status, 413);

    // CORS preflight, trickle not supported.
    let r = http_request("OPTIONS", &url, None, None, T)
        .await
        .expect("http");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let methods = r.header("access-control-allow-methods").unwrap_or("");
    for m in ["POST", "DELETE", "OPTIONS", "PATCH"] {
        assert!(methods.contains(m), "{methods}");
    }
    let allowed = r.header("access-control-allow-headers").unwrap_or("");
    assert!(allowed.contains("Authorization") && allowed.contains("Content-Type"));
    let r = http_request("OPTIONS", &format!("{url}/abc"), None, None, T)
        .await
        .expect("http");
    assert_eq!(r.status, 204);
    let r = http_request("PATCH", &format!("{url}/abc"), None, None, T)
        .await
        .expect("http");
    assert_eq!(r.status, 405);
    let r = http_request("DELETE", &format!("{url}/abc"), None, None, T)
        .await
        .expect("http");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    assert_eq!(bench.service.sessions(), 0);
    assert_eq!(bench.service.active_encoders(), 0);
    bench.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_limit_and_delete() {
    let bench = Bench::start(BenchConfig {
        stream: StreamOptions {
            shards: 2,
            max_listeners: 2,
            ..StreamOptions::default()
        },
        ..BenchConfig::default()
    })
    .await;
    bench.engine.publish(params(vec![
        Some(mix(&[(0, 1.0, 0.0)], 8)),
        Some(mix(&[(1, 1.0, 0.0)], 8)),
    ]));
    let a = bench
        .listen("alice", "tok-a", ClientOptions::default())
        .await;
    let b = bench.listen("bob", "tok-b", ClientOptions::default()).await;
    assert!(a.location().starts_with("/whep/alice/"));
    match WhepListener::connect(&bench.url("eng"), Some("tok-e"), ClientOptions::default()).await {
        Err(ClientError::Http { status: 503, .. }) => {}
        Err(e) => panic!("expected 503, got {e}"),
        Ok(_) => panic!("expected 503, got a session"),
    }
    let stats = bench.service.stats().clone();
    assert_eq!(StreamStats::get(&stats.listeners), 2);
    assert_eq!(bench.service.active_encoders(), 2);

    // DELETE ends the session: its packets stop, its mix's encoder goes.
    assert!(wait_until(Duration::from_secs(2), || a.packets() > 20).await);
    assert_eq!(a.delete().await.expect("delete"), 200);
    assert!(
        wait_until(Duration::from_secs(2), || bench.service.active_encoders()
            == 1)
        .await,
        "alice's encoder freed"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = a.packets();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.packets(), after, "packets stopped after DELETE");
    assert!(b.packets() > after / 2, "bob still listens");
    assert_eq!(StreamStats::get(&stats.listeners), 1);
    assert_eq!(a.delete().await.expect("delete"), 404, "already gone");
    // Someone else's session URL with the right id but wrong client: 404.
    let wrong = b.location().replace("/bob/", "/alice/");
    let r = http_request("DELETE", &format!("{}{wrong}", bench.origin), None, None, T)
        .await
        .expect("http");
    assert_eq!(r.status, 404);
    // A freed slot takes a new listener.
    let e = bench.listen("eng", "tok-e", ClientOptions::default()).await;
    assert_eq!(e.delete().await.expect("delete"), 200);
    assert_eq!(b.delete().await.expect("delete"), 200);
    assert!(
        wait_until(Duration::from_secs(2), || bench.service.active_encoders()
            == 0)
        .await
    );
    assert_eq!(StreamStats::get(&stats.active_mixes), 0);
    assert_eq!(StreamStats::get(&stats.listeners), 0);
    let ev = bench.backend.events.lock().expect("events").clone();
    for c in ["alice", "bob", "eng"] {
        let mine: Vec<bool> = ev.iter().filter(|(x, _)| x == c).map(|(_, l)| *l).collect();
        assert_eq!(mine, [true, false], "{c}: {ev:?}");
    }
    for l in [a, b, e] {
        l.close().await;
    }
    bench.stop().await;
}

/// Every id the store accepts can be heard: WHEP and the store share one client-id rule
/// (`limits::client_id_ok`). Ids outside `[A-Za-z0-9._~-]` arrive percent-encoded, as
/// the page's `encodeURIComponent` sends them, and come back encoded in `Location`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_stored_client_id_can_listen() {
    let mut cfg = BenchConfig::default();
    cfg.clients.push(("ana@ipad".into(), "tok-ana".into(), 0));
    cfg.clients.push(("ñandú".into(), "tok-n".into(), 1));
    let bench = Bench::start(cfg).await;
    bench.engine.publish(params(vec![
        Some(mix(&[(0, 1.0, 0.0)], 8)),
        Some(mix(&[(1, 1.0, 0.0)], 8)),
    ]));
    for (path, token) in [("ana%40ipad", "tok-ana"), ("%C3%B1and%C3%BA", "tok-n")] {
        let l = bench.listen(path, token, ClientOptions::default()).await;
        assert!(
            l.location().starts_with(&format!("/whep/{path}/")),
            "{}",
            l.location()
        );
        assert!(wait_until(Duration::from_secs(2), || l.packets() > 20).await);
        assert_eq!(l.delete().await.expect("delete"), 200, "{path}");
    }
    // Still refused: ids the rule refuses (whitespace, '/', too long), before any lookup.
    let sdp = Some(("application/sdp", OPUS_OFFER));
    for bad in ["ana%20ipad", "ana%2Fipad", &"x".repeat(65)] {
        let r = http_request("POST", &bench.url(bad), Some("tok-ana"), sdp, T)
            .await
            .expect("http");
        assert_eq!(r.status, 404, "{bad}");
    }
    bench.stop().await;
}
