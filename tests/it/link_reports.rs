//! Link reports (`listen_stats`): what a listening page says of its latency and loss
//! reaches the engineer's list and `/metrics`; bad, foreign and too frequent reports are
//! refused and change nothing; the figure goes when the listener goes.

use std::time::Duration;

use crate::common::churn::{metric, metrics};
use crate::common::in_process::InProcess;
use crate::common::whep_listener::{ClientOptions, WhepListener};
use crate::common::{Endpoint, Ws, ADMIN_PIN};
use serde_json::{json, Value};

/// The engineer's row for `id` from a fresh `list_clients`.
async fn row(eng: &mut Ws, id: &str) -> Value {
    eng.send(json!({"type": "list_clients"})).await;
    loop {
        let m = eng.recv_type("clients").await;
        if let Some(r) = m["clients"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["client_id"] == id))
        {
            return r.clone();
        }
    }
}

/// Waits (up to 5 s) until the engineer's row for `id` satisfies `ok`.
async fn row_until(eng: &mut Ws, id: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = row(eng, id).await;
        if ok(&r) || tokio::time::Instant::now() > until {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_page_reports_and_the_engineer_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = InProcess::start(dir.path()).await;
    let mut ana = Ws::connect(&server.ws_url()).await;
    let w = ana.hello(json!({"name": "Ana"})).await;
    let id = w["client_id"].as_str().unwrap().to_string();
    let token = w["token"].as_str().unwrap().to_string();
    let mut eng = Ws::connect(&server.ws_url()).await;
    eng.hello(json!({"admin_pin": ADMIN_PIN})).await;

    // Not listening yet: the report is not kept (there is nothing to show).
    ana.send(json!({"type": "listen_stats", "latency_ms": 99.0, "loss_pct": 0.0}))
        .await;
    let r = row(&mut eng, &id).await;
    assert!(r.get("latency_ms").is_none(), "{r}");

    let url = format!("http://{}/whep/{id}", server.addr());
    let l = WhepListener::connect(&url, Some(&token), ClientOptions::default())
        .await
        .expect("whep");
    assert!(l.wait_connected(Duration::from_secs(10)).await);
    let r = row_until(&mut eng, &id, |r| r["listening"] == true).await;
    assert_eq!(r["listening"], true, "{r}");
    assert!(
        r.get("latency_ms").is_none(),
        "a report from before listening was kept: {r}"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    ana.send(json!({"type": "listen_stats", "latency_ms": 38.5, "loss_pct": 0.5}))
        .await;
    let r = row_until(&mut eng, &id, |r| r["latency_ms"] == 38.5).await;
    assert_eq!(
        (&r["latency_ms"], &r["loss_pct"]),
        (&json!(38.5), &json!(0.5)),
        "{r}"
    );
    crate::common::assert_schema(&json!({"type": "clients", "clients": [r]}));
    let m = metrics(server.addr()).await;
    let label = format!("{{client=\"{id}\"}}");
    assert_eq!(
        metric(&m, &format!("monmix_client_latency_ms{label}")),
        Some(38.5)
    );
    assert_eq!(
        metric(&m, &format!("monmix_client_loss_pct{label}")),
        Some(0.5)
    );

    // Refused, and nothing changes: bad figures, a string, too soon after the last one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (bad, code) in [
        (
            json!({"type": "listen_stats", "latency_ms": -1, "loss_pct": 0}),
            "out_of_range",
        ),
        (
            json!({"type": "listen_stats", "latency_ms": 1e6, "loss_pct": 0}),
            "out_of_range",
        ),
        (
            json!({"type": "listen_stats", "latency_ms": 20, "loss_pct": 101}),
            "out_of_range",
        ),
        (
            json!({"type": "listen_stats", "latency_ms": "NaN", "loss_pct": 0}),
            "bad_json",
        ),
        (
            json!({"type": "listen_stats", "latency_ms": 20}),
            "bad_json",
        ),
    ] {
        ana.send(bad.clone()).await;
        let e = ana.recv_type("error").await;
        assert_eq!(e["code"], code, "{bad} -> {e}");
        assert_eq!(e["ref_type"], "listen_stats", "{e}");
    }
    ana.send_raw(r#"{"type":"listen_stats","latency_ms":NaN,"loss_pct":0}"#)
        .await;
    assert_eq!(ana.recv_type("error").await["code"], "bad_json");
    ana.send(json!({"type": "listen_stats", "latency_ms": 41.0, "loss_pct": 0.0}))
        .await;
    ana.send(json!({"type": "listen_stats", "latency_ms": 77.0, "loss_pct": 9.0}))
        .await;
    let e = ana.recv_type("error").await;
    assert_eq!(e["code"], "rate_limited", "{e}");
    let r = row_until(&mut eng, &id, |r| r["latency_ms"] == 41.0).await;
    assert_eq!(
        (&r["latency_ms"], &r["loss_pct"]),
        (&json!(41.0), &json!(0.0)),
        "{r}"
    );

    // An engineer has no mix of its own to report on.
    eng.send(json!({"type": "listen_stats", "latency_ms": 20, "loss_pct": 0}))
        .await;
    assert_eq!(eng.recv_type("error").await["code"], "forbidden");

    // The listener goes: so does the figure, from the list and from /metrics.
    l.close().await;
    let r = row_until(&mut eng, &id, |r| r["listening"] == false).await;
    assert_eq!(r["listening"], false, "{r}");
    assert!(r.get("latency_ms").is_none(), "{r}");
    let m = metrics(server.addr()).await;
    assert_eq!(
        metric(&m, &format!("monmix_client_latency_ms{label}")),
        None
    );
    assert!(server.stop().await, "clean stop");
}
