//! The OSC core without sockets: addresses, {m} forms, taper, queries, dump, info,
//! subscriptions with an explicit clock, no echo, and every kind of bad input dropped
//! with the state unchanged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monmix::control::osc::{self, AllowList, DropReason, OscCore, OscSettings, Out};
use monmix::engine::Meters;
use monmix::state::{hash_token, Command, Op, Store, StoreOptions};
use monmix::taper;
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};

fn settings() -> OscSettings {
    OscSettings {
        server_name: "test-stage".into(),
        channels: 8,
        lease: Duration::from_secs(10),
        reply_port: None,
        touchosc_mix: "1".into(),
        allow: AllowList::parse(&monmix::config::OscConfig::default().allow).unwrap(),
        max_subscribers: 4,
        performers: Vec::new(),
    }
}

fn setup() -> (tempfile::TempDir, Arc<Store>, OscCore) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(
        StoreOptions::new(dir.path().join("state.json"), 8),
        Box::new(|_| {}),
    )
    .unwrap();
    let store = Arc::new(store);
    for (id, name) in [
        ("id-alice", "Alice"),
        ("id-bob", "Bob"),
        ("id-carol", "Carol"),
    ] {
        store
            .apply(Command::new(
                id,
                Op::Register {
                    token_hash: hash_token("t"),
                    name: name.into(),
                },
            ))
            .unwrap();
        store
            .apply(Command::new(
                id,
                Op::SetChannels {
                    channels: vec![0, 1, 2],
                },
            ))
            .unwrap();
    }
    let core = OscCore::new(store.clone(), settings());
    (dir, store, core)
}

fn enc(addr: &str, args: Vec<OscType>) -> Vec<u8> {
    rosc::encoder::encode(&OscPacket::Message(OscMessage {
        addr: addr.into(),
        args,
    }))
    .unwrap()
}

const PEER: &str = "127.0.0.1:50000";
const OTHER: &str = "127.0.0.1:50001";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn send(core: &mut OscCore, now: Instant, addr: &str, args: Vec<OscType>) -> Vec<Out> {
    let mut out = Vec::new();
    core.handle_datagram(now, &enc(addr, args), peer(), &mut out);
    out
}

#[test]
fn every_m_form_sets_every_parameter() {
    let (_d, store, mut core) = setup();
    let t = Instant::now();
    for (m, id) in [
        ("1", "id-alice"),
        ("bob", "id-bob"),
        ("BOB", "id-bob"),
        ("id-carol", "id-carol"),
    ] {
        assert!(send(
            &mut core,
            t,
            &format!("/mix/{m}/ch/2/gain"),
            vec![OscType::Float(1.5)]
        )
        .is_empty());
        send(
            &mut core,
            t,
            &format!("/mix/{m}/ch/2/pan"),
            vec![OscType::Float(-0.5)],
        );
        send(
            &mut core,
            t,
            &format!("/mix/{m}/ch/3/mute"),
            vec![OscType::Int(1)],
        );
        send(
            &mut core,
            t,
            &format!("/mix/{m}/ch/1/solo"),
            vec![OscType::Float(1.0)],
        );
        send(
            &mut core,
            t,
            &format!("/mix/{m}/ch/8/on"),
            vec![OscType::Int(1)],
        );
        send(
            &mut core,
            t,
            &format!("/mix/{m}/master/gain"),
            vec![OscType::Float(0.5)],
        );
        let mix = store.mix(id).unwrap();
        assert_eq!(mix.gain(1), 1.5, "{m}");
        assert_eq!(mix.pan(1), -0.5, "{m}");
        assert!(mix.muted(2), "{m}");
        assert!(mix.soloed(0), "{m}");
        assert!(mix.subscribed(7), "{m}");
        assert_eq!(mix.master_gain, 0.5, "{m}");
        send(
            &mut core,
            t,
            &format!("/mix/{m}/ch/3/mute"),
            vec![OscType::Float(0.0)],
        );
        assert!(!store.mix(id).unwrap().muted(2));
    }
    assert_eq!(core.stats().dropped_total(), 0);
}

#[test]
fn fader_and_db_use_the_taper_both_ways() {
    let (_d, store, mut core) = setup();
    let t = Instant::now();
    for (pos, db) in [
        (1.0f32, 20.0 * 2f64.log10()), // the top is the largest gain, 2.0
        (0.75, 0.0),
        (0.5, -10.0),
        (0.25, -30.0),
        (0.05, -60.0),
    ] {
        send(&mut core, t, "/mix/1/ch/1/fader", vec![OscType::Float(pos)]);
        let g = store.mix("id-alice").unwrap().gain(0);
        assert!((taper::gain_to_db(g) - db).abs() < 1e-4, "{pos}: {g}");
        let r = send(&mut core, t, "/mix/1/ch/1/fader", vec![]);
        let OscType::Float(back) = r[0].msg.args[0] else {
            panic!()
        };
        assert!((back - pos).abs() < 1e-5, "{pos} -> {back}");
        let r = send(&mut core, t, "/mix/1/ch/1/db", vec![]);
        let OscType::Float(d) = r[0].msg.args[0] else {
            panic!()
        };
        assert!((f64::from(d) - db).abs() < 1e-3, "{db} -> {d}");
    }
    send(&mut core, t, "/mix/1/ch/1/fader", vec![OscType::Float(0.0)]);
    assert_eq!(store.mix("id-alice").unwrap().gain(0), 0.0);
    send(&mut core, t, "/mix/1/ch/1/db", vec![OscType::Float(-6.0)]);
    assert!((store.mix("id-alice").unwrap().gain(0) - 0.501187).abs() < 1e-5);
    send(
        &mut core,
        t,
        "/mix/1/master/fader",
        vec![OscType::Float(0.5)],
    );
    assert!((store.mix("id-alice").unwrap().master_gain - 0.316228).abs() < 1e-5);
    // TouchOSC aliases drive mix 1: fader = channel fader, toggle = mute.
    send(&mut core, t, "/1/fader3", vec![OscType::Float(0.75)]);
    send(&mut core, t, "/1/toggle3", vec![OscType::Float(1.0)]);
    let m = store.mix("id-alice").unwrap();
    assert!((m.gain(2) - 1.0).abs() < 1e-9);
    assert!(m.muted(2));
}

#[test]
fn queries_dump_and_info() {
    let (_d, store, mut core) = setup();
    let t = Instant::now();
    store
        .apply(Command::new(
            "id-bob",
            Op::SetGain {
                channel: 1,
                gain: 0.25,
            },
        ))
        .unwrap();
    let r = send(&mut core, t, "/mix/Bob/ch/2/gain", vec![]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].to, peer());
    assert_eq!(r[0].msg.addr, "/mix/Bob/ch/2/gain");
    assert_eq!(r[0].msg.args, vec![OscType::Float(0.25)]);
    let r = send(&mut core, t, "/mix/2/ch/3/on", vec![]);
    assert_eq!(r[0].msg.args, vec![OscType::Int(1)]);
    let r = send(&mut core, t, "/mix/2/ch/4/on", vec![]);
    assert_eq!(r[0].msg.args, vec![OscType::Int(0)]);

    let r = send(&mut core, t, "/mix/2/dump", vec![]);
    assert_eq!(r.last().unwrap().msg.addr, "/mix/2/dump/end");
    assert!(r
        .iter()
        .any(|o| o.msg.addr == "/mix/2/name" && o.msg.args == vec![OscType::String("Bob".into())]));
    assert!(r
        .iter()
        .any(|o| o.msg.addr == "/mix/2/ch/2/gain" && o.msg.args == vec![OscType::Float(0.25)]));
    for n in 1..=8 {
        for what in ["gain", "fader", "pan", "mute", "solo", "on"] {
            let a = format!("/mix/2/ch/{n}/{what}");
            assert!(r.iter().any(|o| o.msg.addr == a), "dump lacks {a}");
        }
    }

    let r = send(&mut core, t, "/info", vec![]);
    assert_eq!(
        r[0].msg.args,
        vec![
            OscType::String("test-stage".into()),
            OscType::String(env!("CARGO_PKG_VERSION").into()),
            OscType::Int(8),
            OscType::Int(3)
        ]
    );
}

#[test]
fn reply_port_redirects_replies() {
    let (_d, store, _) = setup();
    let mut s = settings();
    s.reply_port = Some(9001);
    let mut core = OscCore::new(store, s);
    let r = send(&mut core, Instant::now(), "/info", vec![]);
    assert_eq!(r[0].to, "127.0.0.1:9001".parse::<SocketAddr>().unwrap());
}

#[test]
fn feedback_goes_to_subscribers_without_echo_until_the_lease_ends() {
    let (_d, store, mut core) = setup();
    let mut events = store.events();
    let t0 = Instant::now();
    let other: SocketAddr = OTHER.parse().unwrap();
    // PEER follows every mix, OTHER only Bob's (and gets Bob's values at once).
    let r = send(&mut core, t0, "/subscribe", vec![]);
    assert_eq!(r[0].msg.addr, "/subscribe");
    let mut out = Vec::new();
    core.handle_datagram(
        t0,
        &enc("/subscribe", vec![OscType::String("bob".into())]),
        other,
        &mut out,
    );
    assert!(out
        .iter()
        .any(|o| o.msg.addr == "/mix/2/ch/1/gain" && o.to == other));
    assert_eq!(core.subscriber_count(), 2);

    // A change from elsewhere (a WS session, origin 7) reaches both.
    store
        .apply(
            Command::new(
                "id-bob",
                Op::SetGain {
                    channel: 0,
                    gain: 0.5,
                },
            )
            .from_origin(7),
        )
        .unwrap();
    let ev = events.try_recv().unwrap();
    let mut out = Vec::new();
    core.on_event(t0, &ev, &mut out);
    for to in [peer(), other] {
        assert!(out.iter().any(|o| o.to == to
            && o.msg.addr == "/mix/2/ch/1/gain"
            && o.msg.args == vec![OscType::Float(0.5)]));
        assert!(out
            .iter()
            .any(|o| o.to == to && o.msg.addr == "/mix/2/ch/1/fader"));
    }
    // Alice's change only reaches PEER (OTHER follows Bob).
    store
        .apply(Command::new(
            "id-alice",
            Op::SetMute {
                channel: 0,
                muted: true,
            },
        ))
        .unwrap();
    let mut out = Vec::new();
    core.on_event(t0, &events.try_recv().unwrap(), &mut out);
    assert!(out.iter().all(|o| o.to == peer()));
    assert!(out.iter().any(|o| o.msg.addr == "/mix/1/ch/1/mute"));
    assert!(
        out.iter().any(|o| o.msg.addr == "/1/toggle1"),
        "TouchOSC alias feedback for mix 1"
    );

    // PEER's own change is not echoed to PEER, but OTHER hears it.
    assert!(send(
        &mut core,
        t0,
        "/mix/bob/ch/1/pan",
        vec![OscType::Float(0.25)]
    )
    .is_empty());
    let mut out = Vec::new();
    core.on_event(t0, &events.try_recv().unwrap(), &mut out);
    assert!(!out.is_empty());
    assert!(out.iter().all(|o| o.to == other), "{out:?}");

    // Renewal extends; expiry stops feedback.
    let t1 = t0 + Duration::from_secs(8);
    send(&mut core, t1, "/subscribe", vec![]);
    let t2 = t0 + Duration::from_secs(12);
    store
        .apply(Command::new(
            "id-bob",
            Op::SetGain {
                channel: 0,
                gain: 0.7,
            },
        ))
        .unwrap();
    let mut out = Vec::new();
    core.on_event(t2, &events.try_recv().unwrap(), &mut out);
    assert!(
        out.iter().all(|o| o.to == peer()) && !out.is_empty(),
        "OTHER expired, PEER renewed"
    );
    let t3 = t1 + Duration::from_secs(11);
    store
        .apply(Command::new(
            "id-bob",
            Op::SetGain {
                channel: 0,
                gain: 0.9,
            },
        ))
        .unwrap();
    let mut out = Vec::new();
    core.on_event(t3, &events.try_recv().unwrap(), &mut out);
    assert!(out.is_empty());
    assert_eq!(core.subscriber_count(), 0);
}

#[test]
fn meters_reach_subscribers() {
    let (_d, _store, mut core) = setup();
    let t = Instant::now();
    let meters = Meters::new(8, 4);
    let mut out = Vec::new();
    core.meter_tick(t, &meters, &mut out);
    assert!(out.is_empty(), "nobody subscribed");
    send(&mut core, t, "/subscribe", vec![OscType::Int(1)]);
    core.meter_tick(t, &meters, &mut out);
    let m: Vec<_> = out.iter().map(|o| o.msg.addr.as_str()).collect();
    assert_eq!(m, ["/mix/1/meters", "/meters/input"]);
    assert_eq!(out[0].msg.args.len(), 2);
    assert_eq!(out[1].msg.args.len(), 16);
}

#[test]
fn subscriber_cap() {
    let (_d, _s, mut core) = setup();
    let t = Instant::now();
    for port in 0..6u16 {
        let mut out = Vec::new();
        core.handle_datagram(
            t,
            &enc("/subscribe", vec![]),
            SocketAddr::from(([127, 0, 0, 1], 40000 + port)),
            &mut out,
        );
    }
    assert_eq!(core.subscriber_count(), 4);
    assert_eq!(core.stats().dropped(DropReason::SubscribersFull), 2);
}

fn nested(depth: usize) -> Vec<u8> {
    let mut p = OscPacket::Message(OscMessage {
        addr: "/mix/1/ch/1/gain".into(),
        args: vec![OscType::Float(0.1)],
    });
    for _ in 0..depth {
        p = OscPacket::Bundle(OscBundle {
            timetag: OscTime {
                seconds: 0,
                fractional: 1,
            },
            content: vec![p],
        });
    }
    rosc::encoder::encode(&p).unwrap()
}

/// A bundle frame nested `depth` deep, built by hand (no rosc), for depths rosc would
/// recurse on.
fn nested_raw(depth: usize) -> Vec<u8> {
    let mut inner = enc("/mix/1/ch/1/gain", vec![OscType::Float(0.1)]);
    for _ in 0..depth {
        let mut b = b"#bundle\0".to_vec();
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        b.extend_from_slice(&(inner.len() as i32).to_be_bytes());
        b.extend_from_slice(&inner);
        inner = b;
    }
    inner
}

#[test]
fn bad_input_is_dropped_counted_and_changes_nothing() {
    let (_d, store, mut core) = setup();
    let t = Instant::now();
    let before = store.snapshot();
    let cases: Vec<(Vec<u8>, SocketAddr, DropReason)> = vec![
        (
            enc("/mix/1/ch/1/gain", vec![OscType::Float(1.2)]),
            "8.8.8.8:9".parse().unwrap(),
            DropReason::Denied,
        ),
        (vec![0u8; 9000], peer(), DropReason::Oversize),
        (nested(5), peer(), DropReason::Nesting),
        (nested_raw(400), peer(), DropReason::Nesting),
        (
            b"#bundle\0\0\0\0\0\0\0\0\x01\x7f\xff\xff\xff".to_vec(),
            peer(),
            DropReason::Malformed,
        ),
        (b"garbage!".to_vec(), peer(), DropReason::Malformed),
        (
            enc("/mix/1/ch/1/volume", vec![OscType::Float(1.0)]),
            peer(),
            DropReason::UnknownAddress,
        ),
        (enc("/nope", vec![]), peer(), DropReason::UnknownAddress),
        (
            enc("/mix/1/ch/0/gain", vec![OscType::Float(1.0)]),
            peer(),
            DropReason::UnknownAddress,
        ),
        (
            enc("/mix/9/ch/1/gain", vec![OscType::Float(1.0)]),
            peer(),
            DropReason::UnknownMix,
        ),
        (
            enc("/mix/Dave/ch/1/gain", vec![OscType::Float(1.0)]),
            peer(),
            DropReason::UnknownMix,
        ),
        (
            enc("/mix/1/ch/1/gain", vec![OscType::String("loud".into())]),
            peer(),
            DropReason::BadType,
        ),
        (
            enc(
                "/mix/1/ch/1/gain",
                vec![OscType::Float(1.0), OscType::Float(1.0)],
            ),
            peer(),
            DropReason::BadType,
        ),
        (
            enc("/mix/1/ch/1/mute", vec![OscType::String("yes".into())]),
            peer(),
            DropReason::BadType,
        ),
        (
            enc("/mix/1/preset/load", vec![OscType::Int(3)]),
            peer(),
            DropReason::BadType,
        ),
        (
            enc("/mix/1/ch/1/gain", vec![OscType::Float(f32::NAN)]),
            peer(),
            DropReason::OutOfRange,
        ),
        (
            enc("/mix/1/ch/1/gain", vec![OscType::Float(f32::INFINITY)]),
            peer(),
            DropReason::OutOfRange,
        ),
        (
            enc("/mix/1/ch/1/gain", vec![OscType::Float(2.5)]),
            peer(),
            DropReason::OutOfRange,
        ),
        (
            enc("/mix/1/ch/1/gain", vec![OscType::Float(-0.1)]),
            peer(),
            DropReason::OutOfRange,
        ),
        (
            enc("/mix/1/ch/1/fader", vec![OscType::Float(1.01)]),
            peer(),
            DropReason::OutOfRange,
        ),
        (
            enc("/mix/1/ch/1/db", vec![OscType::Float(7.0)]),
            peer(),
            DropReason::OutOfRange,
        ),
        (
            enc("/mix/1/ch/1/pan", vec![OscType::Float(1.5)]),
            peer(),
            DropReason::OutOfRange,
        ),
        (
            enc("/mix/1/ch/9/gain", vec![OscType::Float(1.0)]),
            peer(),
            DropReason::OutOfRange,
        ),
        (
            enc("/mix/1/ch/1/mute", vec![OscType::Double(f64::NAN)]),
            peer(),
            DropReason::OutOfRange,
        ),
        (
            enc("/mix/1/preset/load", vec![OscType::String("none".into())]),
            peer(),
            DropReason::OutOfRange,
        ),
        (
            enc("/subscribe", vec![OscType::Float(1.0)]),
            peer(),
            DropReason::BadType,
        ),
    ];
    for (i, (data, from, why)) in cases.iter().enumerate() {
        let n = core.stats().dropped(*why);
        let mut out = Vec::new();
        core.handle_datagram(t, data, *from, &mut out);
        assert!(out.is_empty(), "case {i} replied: {out:?}");
        assert_eq!(
            core.stats().dropped(*why),
            n + 1,
            "case {i}: expected {why:?}"
        );
    }
    assert_eq!(store.snapshot(), before, "state changed");
    assert_eq!(core.stats().dropped_total(), cases.len() as u64);
}

#[test]
fn random_bytes_never_panic() {
    use rand::{Rng, SeedableRng};
    let (_d, _s, mut core) = setup();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let t = Instant::now();
    let seeds = [
        enc("/mix/1/ch/1/gain", vec![OscType::Float(1.0)]),
        nested(3),
        enc("/subscribe", vec![OscType::String("x".into())]),
    ];
    for i in 0..20_000 {
        let mut d = if i % 2 == 0 {
            seeds[i % 3].clone()
        } else {
            (0..rng.random_range(0..64)).map(|_| rng.random()).collect()
        };
        if !d.is_empty() {
            for _ in 0..rng.random_range(1..4) {
                let k = rng.random_range(0..d.len());
                d[k] = rng.random();
            }
        }
        let mut out = Vec::new();
        core.handle_datagram(t, &d, peer(), &mut out);
    }
}

#[test]
fn parse_address_table() {
    use osc::{parse_address as p, Route, Target};
    assert_eq!(
        p("/mix/Bob/ch/12/fader", "1"),
        Some(Route::Mix {
            m: "Bob",
            target: Target::Fader(11)
        })
    );
    assert_eq!(
        p("/mix/1/master", "1"),
        Some(Route::Mix {
            m: "1",
            target: Target::MasterGain
        })
    );
    assert_eq!(
        p("/1/fader2", "Bob"),
        Some(Route::Mix {
            m: "Bob",
            target: Target::Fader(1)
        })
    );
    assert_eq!(
        p("/1/toggle4", "1"),
        Some(Route::Mix {
            m: "1",
            target: Target::Mute(3)
        })
    );
    assert_eq!(p("/info", "1"), Some(Route::Info));
    for bad in [
        "",
        "/",
        "mix/1/dump",
        "/mix//dump",
        "/mix/1/ch/x/gain",
        "/mix/1/ch/99999/gain",
        "/1/fader",
        "/1/push1",
        "/info/x",
    ] {
        assert_eq!(p(bad, "1"), None, "{bad}");
    }
    assert_ne!(
        osc::origin_of(peer()),
        osc::origin_of(OTHER.parse().unwrap())
    );
    assert!(osc::origin_of(peer()) >= 1 << 63);
}
