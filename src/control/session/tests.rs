//! The session driven directly: text in, replies out, store events in, `param_sync` out.
//! No sockets, no sleeps: the clock is an explicit `Instant`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Hub, Limits, Role, Session};
use crate::config::SecurityConfig;
use crate::state::{Store, StoreOptions};

const PIN: &str = "2468";

fn hub(dir: &std::path::Path) -> Hub {
    let (store, _) = Store::open(
        StoreOptions::new(dir.join("state.json"), 8),
        Box::new(|_| {}),
    )
    .expect("store");
    let security = SecurityConfig {
        admin_pin: PIN.into(),
        ..SecurityConfig::default()
    };
    Hub::new(
        "Test".into(),
        Arc::new(store),
        (1..=8).map(|c| format!("Ch {c}")).collect(),
        10.0,
        security,
        Limits::default(),
    )
}

fn ip() -> IpAddr {
    IpAddr::from([10, 0, 0, 7])
}

fn send(s: &mut Session, hub: &Hub, v: Value, now: Instant) -> Vec<Value> {
    s.handle_text(hub, &v.to_string(), now)
}

/// A performer session that said hello; returns it with its client id and token.
fn performer(hub: &Hub, id: u64, now: Instant) -> (Session, String, String) {
    let mut s = Session::new(id, ip(), &hub.limits, now);
    let out = send(&mut s, hub, json!({"type": "hello", "name": "Ana"}), now);
    assert_eq!(out[0]["type"], "welcome", "{out:?}");
    let client = out[0]["client_id"].as_str().expect("id").to_owned();
    let token = out[0]["token"].as_str().expect("token").to_owned();
    (s, client, token)
}

#[test]
fn hello_then_a_change_is_acked_and_synced_to_the_other_device() {
    let dir = tempfile::tempdir().expect("tmp");
    let hub = hub(dir.path());
    let t = Instant::now();
    let (mut a, id, token) = performer(&hub, 1, t);
    assert_eq!(a.role, Some(Role::Performer));
    assert_eq!(a.client_id.as_deref(), Some(id.as_str()));
    assert!(hub.store.mix(&id).is_some(), "hello stored the client");

    let mut b = Session::new(2, ip(), &hub.limits, t);
    let out = send(
        &mut b,
        &hub,
        json!({"type": "hello", "client_id": id, "token": token}),
        t,
    );
    assert_eq!(out[0]["type"], "welcome");
    assert_eq!(out[0]["client_id"], id.as_str());

    let mut events = hub.store.client_events(&id);
    let out = send(
        &mut a,
        &hub,
        json!({"type": "update_gain", "channel": 1, "gain": 0.5}),
        t,
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["type"], "gain_updated");
    assert_eq!(hub.store.mix(&id).expect("mix").gain(1), 0.5);

    let ev = events.try_recv().expect("one event");
    assert!(a.on_event(&ev).is_none(), "the sender has its ack, no echo");
    let sync = b.on_event(&ev).expect("the other device is told");
    assert_eq!(sync["type"], "param_sync");
    assert_eq!(sync["param"], "gain");
    assert_eq!(sync["channel"], 1);
    assert_eq!(sync["value"], 0.5);

    // A session showing another mix ignores it.
    let (c, _, _) = performer(&hub, 3, t);
    assert!(c.on_event(&ev).is_none());
}

#[test]
fn bad_input_gets_one_error_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let hub = hub(dir.path());
    let t = Instant::now();

    let mut fresh = Session::new(9, ip(), &hub.limits, t);
    let out = send(
        &mut fresh,
        &hub,
        json!({"type": "update_gain", "channel": 1, "gain": 0.5}),
        t,
    );
    assert_eq!(out[0]["code"], "unauthorized", "before hello: {out:?}");

    let (mut a, _, _) = performer(&hub, 1, t);
    let seq = hub.store.sequence();
    let file = serde_json::to_string(&hub.store.snapshot()).expect("json");
    for (text, code) in [
        (
            r#"{"type":"update_gain","channel":1,"gain":2.5}"#,
            "out_of_range",
        ),
        (
            r#"{"type":"update_gain","channel":1,"gain":-0.1}"#,
            "out_of_range",
        ),
        (
            r#"{"type":"update_gain","channel":1,"gain":NaN}"#,
            "bad_json",
        ),
        (
            r#"{"type":"update_gain","channel":1,"gain":1e309}"#,
            "bad_json",
        ),
        (
            r#"{"type":"update_gain","channel":8,"gain":0.5}"#,
            "unknown_channel",
        ),
        (
            r#"{"type":"update_gain","channel":-1,"gain":0.5}"#,
            "unknown_channel",
        ),
        (
            r#"{"type":"update_pan","channel":1,"pan":1.5}"#,
            "out_of_range",
        ),
        (
            r#"{"type":"update_gain","channel":1,"gain":"loud"}"#,
            "bad_json",
        ),
        (r#"{"type":"teleport"}"#, "unknown_type"),
        (r#"not json"#, "bad_json"),
        (r#"{"type":"list_clients"}"#, "forbidden"),
        (r#"{"type":"watch_client","client_id":"c-x"}"#, "forbidden"),
    ] {
        let out = a.handle_text(&hub, text, t);
        assert_eq!(out.len(), 1, "{text}: {out:?}");
        assert_eq!(out[0]["type"], "error", "{text}");
        assert_eq!(out[0]["code"], code, "{text}: {out:?}");
    }
    assert_eq!(hub.store.sequence(), seq, "no change was applied");
    assert_eq!(
        serde_json::to_string(&hub.store.snapshot()).expect("json"),
        file
    );
    let big = format!(r#"{{"type":"hello","name":"{}"}}"#, "x".repeat(70_000));
    let out = a.handle_text(&hub, &big, t);
    assert_eq!(out[0]["code"], "too_large", "{:?}", out[0]);
}

#[test]
fn a_flood_is_rate_limited_with_one_notice_per_second() {
    let dir = tempfile::tempdir().expect("tmp");
    let hub = hub(dir.path());
    let t = Instant::now();
    let (mut a, _, _) = performer(&hub, 1, t);
    let rate = hub.limits.rate_per_sec as usize;
    let gain =
        |i: usize| json!({"type": "update_gain", "channel": 0, "gain": (i % 2) as f64 * 0.5});
    // The hello took one token; the rest of the burst is served at the same instant.
    for i in 1..rate {
        let out = send(&mut a, &hub, gain(i), t);
        assert_eq!(out[0]["type"], "gain_updated", "message {i}: {out:?}");
    }
    let out = send(&mut a, &hub, gain(0), t);
    assert_eq!(out[0]["code"], "rate_limited", "{out:?}");
    assert!(
        send(&mut a, &hub, gain(1), t).is_empty(),
        "one notice, then silence"
    );
    let later = t + Duration::from_secs(1);
    let out = send(&mut a, &hub, gain(1), later);
    assert_eq!(out[0]["type"], "gain_updated", "tokens refill: {out:?}");
}

#[test]
fn engineer_watches_and_edits_a_musicians_mix() {
    let dir = tempfile::tempdir().expect("tmp");
    let hub = hub(dir.path());
    let t = Instant::now();
    let (_a, id, _) = performer(&hub, 1, t);

    let mut wrong = Session::new(5, ip(), &hub.limits, t);
    let out = send(
        &mut wrong,
        &hub,
        json!({"type": "hello", "admin_pin": "0000"}),
        t,
    );
    assert_eq!(out[0]["code"], "unauthorized", "{out:?}");
    assert_eq!(wrong.role, None);

    let mut e = Session::new(6, ip(), &hub.limits, t);
    let out = send(&mut e, &hub, json!({"type": "hello", "admin_pin": PIN}), t);
    assert_eq!(out[0]["type"], "welcome");
    assert_eq!(out[0]["role"], "engineer");
    assert!(out[0]["cue_token"].as_str().is_some_and(|c| c.len() >= 32));
    assert_eq!(e.role, Some(Role::Engineer));

    let out = send(
        &mut e,
        &hub,
        json!({"type": "watch_client", "client_id": id}),
        t,
    );
    assert_eq!(out[0]["type"], "client_mix");
    assert_eq!(e.watching.as_deref(), Some(id.as_str()));
    assert!(e.snapshot_seq.is_some(), "a snapshot went out");

    let out = send(
        &mut e,
        &hub,
        json!({"type": "update_client_mix", "client_id": id,
               "op": {"type": "update_pan", "channel": 2, "pan": -1.0}}),
        t,
    );
    assert_eq!(out[0]["type"], "pan_updated", "{out:?}");
    assert_eq!(out[0]["client_id"], id.as_str());
    assert_eq!(hub.store.mix(&id).expect("mix").pan(2), -1.0);

    let out = send(
        &mut e,
        &hub,
        json!({"type": "watch_client", "client_id": "c-nobody"}),
        t,
    );
    assert_eq!(out[0]["code"], "unknown_client");
}
