//! Store behaviour: validation leaves the state untouched, valid ops produce the right events
//! and engine parameters, state survives a restart, the seed's file loads and imports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use monmix::engine::params::EngineParams;
use monmix::state::model::MAX_PRESETS;
use monmix::state::{
    hash_token, import_seed, Change, Command, Event, LoadSource, Op, Store, StoreError,
    StoreOptions,
};

type Published = Arc<Mutex<Vec<EngineParams>>>;

fn opts(dir: &Path, channels: usize) -> StoreOptions {
    let mut o = StoreOptions::new(dir.join("state.json"), channels);
    o.max_mixes = 4;
    o.max_clients = 3;
    o
}

fn open_with(o: StoreOptions) -> (Store, Published) {
    let published: Published = Arc::new(Mutex::new(Vec::new()));
    let p = published.clone();
    let (store, _report) = Store::open(
        o,
        Box::new(move |params| p.lock().expect("lock").push(params)),
    )
    .expect("open");
    (store, published)
}

fn last(p: &Published) -> EngineParams {
    p.lock().expect("lock").last().cloned().expect("published")
}

fn count(p: &Published) -> usize {
    p.lock().expect("lock").len()
}

fn cmd(id: &str, op: Op) -> Command {
    Command::new(id, op)
}

fn register(store: &Store, id: &str, token: &str) {
    store
        .apply(cmd(
            id,
            Op::Register {
                token_hash: hash_token(token),
                name: format!("name {id}"),
            },
        ))
        .expect("register");
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<Event> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        v.push(e);
    }
    v
}

fn bytes(store: &Store) -> Vec<u8> {
    serde_json::to_vec(&store.snapshot()).expect("serialize")
}

#[test]
fn invalid_commands_change_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, published) = open_with(opts(dir.path(), 8));
    register(&store, "a", "tok-a");
    register(&store, "b", "tok-b");
    store
        .apply(cmd(
            "a",
            Op::SetChannels {
                channels: vec![0, 1],
            },
        ))
        .expect("channels");
    store
        .apply(cmd(
            "a",
            Op::SetGain {
                channel: 1,
                gain: 0.5,
            },
        ))
        .expect("gain");
    store
        .apply(cmd("a", Op::SavePreset { name: "p".into() }))
        .expect("preset");
    let mut rx = store.events();

    let nan = f64::NAN;
    let inf = f64::INFINITY;
    let gains = |ch: u32, v: f64| Some(BTreeMap::from([(ch, v)]));
    let reg = |_id: &str, hash: String, name: &str| Op::Register {
        token_hash: hash,
        name: name.into(),
    };
    let good_hash = hash_token("x");
    let table: Vec<(&str, Op, &str)> = vec![
        (
            "zz",
            Op::SetGain {
                channel: 0,
                gain: 1.0,
            },
            "unknown_client",
        ),
        ("zz", Op::Connected, "unknown_client"),
        ("zz", Op::Delete, "unknown_client"),
        (
            "zz",
            Op::Subscribe {
                channels: None,
                gains: None,
                pans: None,
            },
            "unknown_client",
        ),
        (
            "a",
            Op::SetGain {
                channel: 8,
                gain: 1.0,
            },
            "unknown_channel",
        ),
        (
            "a",
            Op::SetGain {
                channel: 0,
                gain: 2.01,
            },
            "out_of_range",
        ),
        (
            "a",
            Op::SetGain {
                channel: 0,
                gain: -0.1,
            },
            "out_of_range",
        ),
        (
            "a",
            Op::SetGain {
                channel: 0,
                gain: nan,
            },
            "not_finite",
        ),
        (
            "a",
            Op::SetGain {
                channel: 0,
                gain: inf,
            },
            "not_finite",
        ),
        (
            "a",
            Op::SetPan {
                channel: 0,
                pan: 1.5,
            },
            "out_of_range",
        ),
        (
            "a",
            Op::SetPan {
                channel: 0,
                pan: -inf,
            },
            "not_finite",
        ),
        (
            "a",
            Op::SetPan {
                channel: 9,
                pan: 0.0,
            },
            "unknown_channel",
        ),
        (
            "a",
            Op::SetMute {
                channel: 99,
                muted: true,
            },
            "unknown_channel",
        ),
        (
            "a",
            Op::SetSolo {
                channel: 8,
                soloed: true,
            },
            "unknown_channel",
        ),
        ("a", Op::SetMaster { gain: 3.0 }, "out_of_range"),
        ("a", Op::SetMaster { gain: nan }, "not_finite"),
        (
            "a",
            Op::SetChannels {
                channels: vec![0, 8],
            },
            "unknown_channel",
        ),
        (
            "a",
            Op::SetOn {
                channel: 8,
                on: true,
            },
            "unknown_channel",
        ),
        (
            "a",
            Op::Subscribe {
                channels: Some(vec![100]),
                gains: None,
                pans: None,
            },
            "unknown_channel",
        ),
        (
            "a",
            Op::Subscribe {
                channels: Some(vec![0]),
                gains: gains(9, 1.0),
                pans: None,
            },
            "unknown_channel",
        ),
        (
            "a",
            Op::Subscribe {
                channels: Some(vec![0]),
                gains: gains(0, 2.5),
                pans: None,
            },
            "out_of_range",
        ),
        (
            "a",
            Op::Subscribe {
                channels: Some(vec![0]),
                gains: None,
                pans: gains(0, nan),
            },
            "not_finite",
        ),
        (
            "a",
            Op::Rename {
                name: String::new(),
            },
            "invalid_name",
        ),
        (
            "a",
            Op::Rename {
                name: "x".repeat(65),
            },
            "invalid_name",
        ),
        (
            "a",
            Op::Rename {
                name: "a\nb".into(),
            },
            "invalid_name",
        ),
        (
            "a",
            Op::SavePreset {
                name: String::new(),
            },
            "invalid_name",
        ),
        (
            "a",
            Op::LoadPreset {
                name: "nope".into(),
            },
            "unknown_preset",
        ),
        (
            "a",
            Op::DeletePreset {
                name: "nope".into(),
            },
            "unknown_preset",
        ),
        ("a", reg("a", good_hash.clone(), "again"), "client_exists"),
        ("", reg("", good_hash.clone(), "n"), "invalid_client_id"),
        (
            "has space",
            reg("", good_hash.clone(), "n"),
            "invalid_client_id",
        ),
        ("c", reg("c", "xyz".into(), "n"), "invalid_token_hash"),
        ("c", reg("c", good_hash.clone(), ""), "invalid_name"),
        (
            "",
            Op::Reorder {
                order: vec!["zzz".into()],
            },
            "invalid_order",
        ),
        (
            "",
            Op::Reorder {
                order: vec!["a".into(), "a".into()],
            },
            "invalid_order",
        ),
    ];

    for (id, op, code) in table {
        let before = bytes(&store);
        let seq = store.sequence();
        let n = count(&published);
        let err = store
            .apply(cmd(id, op.clone()))
            .expect_err(&format!("{op:?} must fail"));
        assert_eq!(err.code(), code, "{op:?}: {err}");
        assert_eq!(bytes(&store), before, "{op:?} changed the state");
        assert_eq!(store.sequence(), seq);
        assert_eq!(count(&published), n, "{op:?} published");
        assert!(drain(&mut rx).is_empty(), "{op:?} sent events");
    }

    // Client limit (3): a third client fits, a fourth does not.
    register(&store, "c", "tok-c");
    let before = bytes(&store);
    let err = store
        .apply(cmd("d", reg("d", good_hash.clone(), "d")))
        .expect_err("full");
    assert!(
        matches!(err, StoreError::TooManyClients { max: 3 }),
        "{err}"
    );
    assert_eq!(bytes(&store), before);

    // Preset limit.
    for i in 1..MAX_PRESETS {
        store
            .apply(cmd(
                "a",
                Op::SavePreset {
                    name: format!("p{i}"),
                },
            ))
            .expect("preset fits");
    }
    let before = bytes(&store);
    let err = store
        .apply(cmd(
            "a",
            Op::SavePreset {
                name: "one too many".into(),
            },
        ))
        .expect_err("33rd preset");
    assert!(matches!(err, StoreError::TooManyPresets { .. }), "{err}");
    assert_eq!(bytes(&store), before);
    // Overwriting an existing preset is still allowed.
    store
        .apply(cmd(
            "a",
            Op::SetGain {
                channel: 0,
                gain: 0.25,
            },
        ))
        .expect("gain");
    let applied = store
        .apply(cmd("a", Op::SavePreset { name: "p".into() }))
        .expect("overwrite");
    assert_eq!(applied.events.len(), 1);
}

#[test]
fn valid_ops_produce_events_and_engine_params() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, published) = open_with(opts(dir.path(), 8));
    let mut rx = store.events();
    register(&store, "a", "tok-a");
    register(&store, "b", "tok-b");
    assert_eq!(store.client_slot("a"), Some(0));
    assert_eq!(store.client_slot("b"), Some(1));
    let evs = drain(&mut rx);
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0].sequence, 1);
    assert_eq!(
        evs[0].change,
        Change::ClientAdded {
            name: "name a".into(),
            slot: Some(0)
        }
    );

    let ops = [
        (
            Op::SetChannels {
                channels: vec![2, 0, 2],
            },
            Change::Channels {
                channels: vec![0, 2],
            },
        ),
        (
            Op::SetGain {
                channel: 0,
                gain: 0.5,
            },
            Change::Gain {
                channel: 0,
                gain: 0.5,
            },
        ),
        (
            Op::SetPan {
                channel: 2,
                pan: -0.5,
            },
            Change::Pan {
                channel: 2,
                pan: -0.5,
            },
        ),
        (
            Op::SetMute {
                channel: 2,
                muted: true,
            },
            Change::Mute {
                channel: 2,
                muted: true,
            },
        ),
        (
            Op::SetSolo {
                channel: 0,
                soloed: true,
            },
            Change::Solo {
                channel: 0,
                soloed: true,
            },
        ),
        (Op::SetMaster { gain: 1.5 }, Change::Master { gain: 1.5 }),
        (
            Op::SetOn {
                channel: 5,
                on: true,
            },
            Change::Channels {
                channels: vec![0, 2, 5],
            },
        ),
        (
            Op::SetOn {
                channel: 5,
                on: false,
            },
            Change::Channels {
                channels: vec![0, 2],
            },
        ),
    ];
    let mut seq = store.sequence();
    for (op, change) in ops {
        let applied = store.apply(cmd("a", op.clone())).expect("valid");
        seq += 1;
        assert_eq!(applied.sequence, seq, "{op:?}");
        let expect = vec![Event {
            sequence: seq,
            origin: 0,
            client_id: "a".into(),
            change,
        }];
        assert_eq!(applied.events, expect);
        assert_eq!(drain(&mut rx), expect);
    }

    let p = last(&published);
    assert_eq!(p, store.engine_params());
    assert_eq!(p.mixes.len(), 4);
    let a = p.mixes[0].as_ref().expect("slot of a");
    assert_eq!(a.channels.len(), 8);
    assert_eq!(a.master, 1.5);
    let c0 = a.channels[0];
    assert!(c0.subscribed && c0.soloed && !c0.muted);
    assert_eq!((c0.gain, c0.pan), (0.5, 0.0));
    let c2 = a.channels[2];
    assert!(c2.subscribed && c2.muted && !c2.soloed);
    assert_eq!((c2.gain, c2.pan), (1.0, -0.5));
    assert!(!a.channels[1].subscribed && !a.channels[5].subscribed);
    let b = p.mixes[1].as_ref().expect("slot of b");
    assert!(b.channels.iter().all(|c| !c.subscribed));
    assert!(p.mixes[2].is_none() && p.mixes[3].is_none());

    // No-ops: acked, nothing published, no event, same sequence.
    let n = count(&published);
    let before = bytes(&store);
    for op in [
        Op::SetGain {
            channel: 0,
            gain: 0.5,
        },
        Op::SetGain {
            channel: 3,
            gain: 1.0,
        },
        Op::SetPan {
            channel: 3,
            pan: 0.0,
        },
        Op::SetMute {
            channel: 3,
            muted: false,
        },
        Op::SetChannels {
            channels: vec![2, 0],
        },
        Op::Subscribe {
            channels: None,
            gains: None,
            pans: None,
        },
        Op::SetMaster { gain: 1.5 },
    ] {
        let applied = store.apply(cmd("a", op.clone())).expect("no-op ok");
        assert_eq!(applied.sequence, seq, "{op:?}");
        assert!(applied.events.is_empty(), "{op:?}");
    }
    assert_eq!(count(&published), n);
    assert_eq!(bytes(&store), before);
    assert!(drain(&mut rx).is_empty());

    // Subscribe with channels merges gains/pans over the stored ones.
    let applied = store
        .apply(cmd(
            "a",
            Op::Subscribe {
                channels: Some(vec![1, 0]),
                gains: Some(BTreeMap::from([(1, 0.7)])),
                pans: Some(BTreeMap::from([(1, 0.25)])),
            },
        ))
        .expect("subscribe");
    let mix = store.mix("a").expect("mix");
    assert_eq!(mix.channels, vec![0, 1]);
    assert_eq!(mix.gain(0), 0.5);
    assert_eq!((mix.gain(1), mix.pan(1)), (0.7, 0.25));
    assert!(matches!(&applied.events[0].change, Change::MixReplaced { mix: m } if **m == mix));

    // Presets: save, change, load restores, delete.
    store
        .apply(cmd(
            "a",
            Op::SavePreset {
                name: "song 1".into(),
            },
        ))
        .expect("save");
    store
        .apply(cmd(
            "a",
            Op::SetGain {
                channel: 0,
                gain: 2.0,
            },
        ))
        .expect("gain");
    let applied = store
        .apply(cmd(
            "a",
            Op::LoadPreset {
                name: "song 1".into(),
            },
        ))
        .expect("load");
    assert!(matches!(
        applied.events[0].change,
        Change::MixReplaced { .. }
    ));
    assert_eq!(store.mix("a").expect("mix").gain(0), 0.5);
    assert_eq!(
        last(&published).mixes[0].as_ref().expect("a").channels[0].gain,
        0.5
    );
    let applied = store
        .apply(cmd(
            "a",
            Op::DeletePreset {
                name: "song 1".into(),
            },
        ))
        .expect("delete");
    assert_eq!(
        applied.events[0].change,
        Change::PresetsChanged { names: vec![] }
    );

    // Rename, connect, reorder.
    store
        .apply(cmd(
            "a",
            Op::Rename {
                name: "Drums".into(),
            },
        ))
        .expect("rename");
    let applied = store.apply(cmd("a", Op::Connected)).expect("connected");
    assert!(matches!(
        applied.events[0].change,
        Change::Connected {
            connection_count: 1,
            ..
        }
    ));
    let applied = store
        .apply(cmd(
            "",
            Op::Reorder {
                order: vec!["b".into()],
            },
        ))
        .expect("reorder");
    assert_eq!(
        applied.events[0].change,
        Change::OrderChanged {
            order: vec!["b".into(), "a".into()]
        }
    );
    let clients = store.clients();
    assert_eq!(clients.len(), 2);
    assert_eq!((clients[0].id.as_str(), clients[1].id.as_str()), ("b", "a"));
    assert_eq!(clients[1].name, "Drums");
    assert_eq!(clients[1].device.name, "Drums");
    assert_eq!(clients[1].device.connection_count, 1);
    assert_eq!(clients[1].slot, Some(0));

    assert!(store.verify_token("a", "tok-a"));
    assert!(!store.verify_token("a", "tok-b"));
    assert!(!store.verify_token("zz", "tok-a"));

    // Delete frees the slot, the next client gets it.
    let applied = store.apply(cmd("a", Op::Delete)).expect("delete");
    assert_eq!(applied.events[0].change, Change::ClientRemoved);
    assert!(last(&published).mixes[0].is_none());
    assert!(store.mix("a").is_none());
    register(&store, "c", "tok-c");
    assert_eq!(store.client_slot("c"), Some(0));
    assert!(last(&published).mixes[0].is_some());
}

#[test]
fn clients_beyond_max_mixes_wait_for_a_slot() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut o = opts(dir.path(), 4);
    o.max_mixes = 1;
    let (store, published) = open_with(o);
    register(&store, "a", "t");
    register(&store, "b", "t");
    assert_eq!(store.client_slot("a"), Some(0));
    assert_eq!(store.client_slot("b"), None);
    assert_eq!(last(&published).mixes.len(), 1);
    store.apply(cmd("a", Op::Delete)).expect("delete");
    assert_eq!(store.client_slot("b"), Some(0));
}

fn busy_store(dir: &Path) -> Store {
    let (store, _) = open_with(opts(dir, 8));
    register(&store, "a", "tok-a");
    register(&store, "b", "tok-b");
    let ops = [
        Op::SetChannels {
            channels: vec![0, 3, 7],
        },
        Op::SetGain {
            channel: 3,
            gain: 0.8,
        },
        Op::SetGain {
            channel: 7,
            gain: 0.1,
        },
        Op::SetPan {
            channel: 3,
            pan: -0.3,
        },
        Op::SetMute {
            channel: 0,
            muted: true,
        },
        Op::SetSolo {
            channel: 7,
            soloed: true,
        },
        Op::SetMaster { gain: 0.9 },
        Op::Rename {
            name: "Bajo ñ".into(),
        },
        Op::SavePreset {
            name: "intro".into(),
        },
        Op::Connected,
    ];
    for op in ops {
        store.apply(cmd("a", op)).expect("valid");
    }
    store
        .apply(cmd(
            "",
            Op::Reorder {
                order: vec!["b".into(), "a".into()],
            },
        ))
        .expect("reorder");
    store
}

#[test]
fn state_round_trips_through_disk() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = busy_store(dir.path());
    store.flush().expect("flush");
    let before = store.snapshot();
    assert_eq!(store.persist_stats().last_write_sequence(), before.sequence);
    drop(store);

    let (store, report) = Store::open(opts(dir.path(), 8), Box::new(|_| {})).expect("reopen");
    assert_eq!(report.source, LoadSource::Primary);
    assert_eq!(report.clients, 2);
    assert_eq!(store.snapshot(), before);
    assert_eq!(store.client_slot("a"), Some(1), "slots follow client order");
    assert!(store.verify_token("a", "tok-a"));

    // The file itself: seed key names, string channel keys, numbers as numbers.
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state.json")).expect("read"))
            .expect("json");
    assert_eq!(v["format_version"], 1);
    let a = &v["channels_state"]["a"];
    assert_eq!(a["gains"]["3"], 0.8);
    assert_eq!(a["pans"]["3"], -0.3);
    assert_eq!(a["mutes"]["0"], true);
    assert_eq!(a["master_gain"], 0.9);
    assert!(a["timestamp"].is_u64());
    assert_eq!(a["channels"], serde_json::json!([0, 3, 7]));
    assert_eq!(v["client_order"], serde_json::json!(["b", "a"]));
    assert_eq!(v["devices"]["a"]["connection_count"], 1);
}

#[test]
fn fewer_channels_never_lose_a_mix() {
    let dir = tempfile::tempdir().expect("tmp");
    {
        let (store, _) = open_with(opts(dir.path(), 8));
        register(&store, "a", "t");
        store
            .apply(cmd(
                "a",
                Op::SetChannels {
                    channels: vec![1, 6, 7],
                },
            ))
            .expect("channels");
        store
            .apply(cmd(
                "a",
                Op::SetGain {
                    channel: 7,
                    gain: 0.3,
                },
            ))
            .expect("gain");
        store.flush().expect("flush");
    }
    let mix8;
    {
        let (store, published) = open_with(opts(dir.path(), 4));
        mix8 = store.mix("a").expect("kept");
        assert_eq!(mix8.channels, vec![1, 6, 7]);
        let p = last(&published);
        let m = p.mixes[0].as_ref().expect("slot");
        assert_eq!(m.channels.len(), 4);
        assert!(m.channels[1].subscribed);
        // A change while running small keeps the channels it cannot see.
        store
            .apply(cmd(
                "a",
                Op::SetGain {
                    channel: 1,
                    gain: 0.5,
                },
            ))
            .expect("gain");
        // A client's new channel list cannot drop channels it cannot see either.
        let applied = store
            .apply(cmd("a", Op::SetChannels { channels: vec![0] }))
            .expect("channels");
        assert_eq!(
            applied.events[0].change,
            Change::Channels {
                channels: vec![0, 6, 7]
            }
        );
        store.flush().expect("flush");
    }
    let (store, published) = open_with(opts(dir.path(), 8));
    let mix = store.mix("a").expect("mix");
    assert_eq!(mix.channels, vec![0, 6, 7]);
    assert_eq!(mix.gain(7), 0.3);
    assert_eq!(mix.gain(1), 0.5);
    assert_eq!(
        last(&published).mixes[0].as_ref().expect("slot").channels[7].gain,
        0.3
    );
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed_channels_state.json")
}

#[test]
fn seed_example_loads_as_a_state_file() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::copy(fixture(), dir.path().join("state.json")).expect("copy");
    let (store, published) = open_with(opts(dir.path(), 8));
    let snap = store.snapshot();
    assert_eq!(snap.timestamp, 1704528000);
    assert_eq!(snap.client_order, vec!["web-abc123", "web-def456"]);
    let a = store.mix("web-abc123").expect("abc");
    assert_eq!(a.channels, vec![0, 1, 2]);
    assert_eq!((a.gain(1), a.pan(1), a.muted(2)), (0.8, -0.5, true));
    assert_eq!(a.pan(2), 0.25);
    assert_eq!(a.timestamp, 1704528000000);
    assert!(a.solos.is_empty() && a.name.is_empty());
    let d = store.mix("web-def456").expect("def");
    assert_eq!(d.channels, vec![3, 4, 5, 6, 7]);
    assert_eq!(d.master_gain, 0.8);
    assert_eq!(d.gain(5), 0.9);
    // Registry entries were created, without a token: nobody can claim them by guessing.
    assert_eq!(snap.devices.len(), 2);
    assert!(snap.devices.values().all(|dev| dev.token_hash.is_none()));
    assert!(!store.verify_token("web-abc123", ""));
    let p = last(&published);
    let m = p.mixes[0].as_ref().expect("abc slot");
    assert!(m.channels[2].muted && m.channels[2].subscribed);
    assert_eq!(m.channels[1].gain, 0.8);
    assert_eq!(p.mixes[1].as_ref().expect("def slot").master, 0.8);
}

#[test]
fn import_merges_seed_clients() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, _) = open_with(opts(dir.path(), 8));
    register(&store, "web-abc123", "mine");
    store
        .apply(cmd("web-abc123", Op::Rename { name: "Voz".into() }))
        .expect("rename");
    store
        .apply(cmd(
            "web-abc123",
            Op::SavePreset {
                name: "mine".into(),
            },
        ))
        .expect("preset");
    let file = import_seed(&fixture()).expect("import_seed");
    assert_eq!(file.channels_state.len(), 2);
    let mut rx = store.events();
    let applied = store.import(file).expect("import");
    let seq = applied.sequence;
    assert_eq!(
        applied.events.iter().filter(|e| e.sequence == seq).count(),
        applied.events.len()
    );
    let evs = drain(&mut rx);
    assert_eq!(evs, applied.events);
    assert!(evs
        .iter()
        .any(|e| e.client_id == "web-def456" && matches!(e.change, Change::ClientAdded { .. })));
    let abc = store.mix("web-abc123").expect("abc");
    assert_eq!(abc.channels, vec![0, 1, 2]);
    assert_eq!(abc.gain(1), 0.8);
    assert_eq!(abc.name, "Voz", "name kept: the seed has none");
    assert!(abc.presets.contains_key("mine"), "presets kept");
    assert_eq!(store.mix("web-def456").expect("def").master_gain, 0.8);
    // The existing owner keeps their token; the new client has none yet.
    assert!(store.verify_token("web-abc123", "mine"));
    let snap = store.snapshot();
    assert!(snap.devices["web-def456"].token_hash.is_none());
    assert_eq!(snap.client_order, vec!["web-abc123", "web-def456"]);
}

#[test]
fn import_respects_the_client_limit() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut o = opts(dir.path(), 8);
    o.max_clients = 2;
    let (store, _) = open_with(o);
    register(&store, "other", "t");
    let before = bytes(&store);
    let err = store
        .import(import_seed(&fixture()).expect("seed"))
        .expect_err("3 clients > 2");
    assert!(matches!(err, StoreError::TooManyClients { max: 2 }));
    assert_eq!(bytes(&store), before);
}

#[test]
fn out_of_range_values_in_a_file_are_clamped() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = r#"{"channels_state": {"x": {"channels": [3, 1, 1],
        "gains": {"1": 2.5}, "pans": {"3": -7}, "master_gain": -1, "timestamp": 5}}}"#;
    std::fs::write(dir.path().join("state.json"), text).expect("write");
    let (store, report) = Store::open(opts(dir.path(), 8), Box::new(|_| {})).expect("open");
    assert_eq!(report.source, LoadSource::Primary);
    assert_eq!(report.quarantined, None);
    assert!(report.repairs >= 4, "{report:?}");
    let m = store.mix("x").expect("x");
    assert_eq!(m.channels, vec![1, 3]);
    assert_eq!((m.gain(1), m.pan(3), m.master_gain), (2.0, -1.0, 0.0));
}

#[test]
fn concurrent_writers_get_ordered_sequences_and_events() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();

    let dir = tempfile::tempdir().expect("tmp");
    let mut o = opts(dir.path(), 8);
    o.max_clients = 8;
    let published: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
    let (store, _) = Store::open(o, {
        let p = published.clone();
        // Count publishes: one at open, one per engine-relevant change.
        Box::new(move |params: EngineParams| {
            let n = params.mixes.iter().flatten().count() as u64;
            p.lock().expect("lock").push(n);
        })
    })
    .expect("open");
    let store = Arc::new(store);
    for t in 0..4 {
        register(&store, &format!("t{t}"), "tok");
    }
    let mut rx = store.events();
    let start = store.sequence();
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for i in 0..200u32 {
                    let applied = store
                        .apply(cmd(
                            &format!("t{t}"),
                            Op::SetGain {
                                channel: i % 8,
                                gain: f64::from(i % 100 + 1) / 64.0,
                            },
                        ))
                        .expect("apply");
                    seqs.push(applied.sequence);
                }
                seqs
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 800, "every change got its own sequence");
    assert_eq!(store.sequence(), start + 800);
    let events = drain(&mut rx);
    assert_eq!(events.len(), 800);
    assert!(
        events
            .windows(2)
            .all(|w| w[0].sequence + 1 == w[1].sequence),
        "events are broadcast in sequence order"
    );
    assert_eq!(published.lock().expect("lock").len(), 1 + 4 + 800);
}

/// A fader move rebuilds only its own mix: every other mix of the published snapshot is
/// the very same `Arc` as before (the engine then recomputes one slot, not all of them).
#[test]
fn a_change_rebuilds_only_its_own_mix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, published) = open_with(opts(dir.path(), 8));
    register(&store, "a", "tok-a");
    register(&store, "b", "tok-b");
    register(&store, "c", "tok-c");
    let before = last(&published);
    let n = count(&published);
    store
        .apply(cmd(
            "b",
            Op::SetGain {
                channel: 0,
                gain: 0.25,
            },
        ))
        .expect("gain");
    assert_eq!(count(&published), n + 1, "one snapshot per change");
    let after = last(&published);
    let slot = |id: &str| store.client_slot(id).expect("slot");
    let (a, b, c) = (slot("a"), slot("b"), slot("c"));
    let same = |s: usize| {
        Arc::ptr_eq(
            before.mixes[s].as_ref().expect("before"),
            after.mixes[s].as_ref().expect("after"),
        )
    };
    assert!(same(a) && same(c), "untouched mixes shared");
    assert!(!same(b), "the changed mix is new");
    assert_eq!(after.mixes[b].as_ref().expect("b").channels[0].gain, 0.25);
    // The snapshot equals a full rebuild of the state.
    assert_eq!(after, store.engine_params());
}

/// Events are routed per client: a receiver of one client's events sees that client's
/// changes and nothing else, so a change wakes only the sessions showing that mix.
#[test]
fn client_events_carry_only_that_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _published) = open_with(opts(dir.path(), 8));
    register(&store, "a", "tok-a");
    register(&store, "b", "tok-b");
    let mut only_a = store.client_events("a");
    let mut only_a_too = store.client_events("a");
    let mut all = store.events();
    for (id, gain) in [("b", 0.5), ("a", 0.25), ("b", 0.75)] {
        store
            .apply(cmd(id, Op::SetGain { channel: 0, gain }))
            .expect("gain");
    }
    for rx in [&mut only_a, &mut only_a_too] {
        let e = rx.try_recv().expect("a's change");
        assert_eq!(e.client_id, "a");
        assert!(rx.try_recv().is_err(), "b's changes are not routed to a");
    }
    let mut n = 0;
    while all.try_recv().is_ok() {
        n += 1;
    }
    assert_eq!(n, 3, "the all-events channel still sees everything");
}

/// Output assignments: only configured outputs, only existing clients (or the cue);
/// refusals change nothing; an assignment (and a removal) survives a reopen; a file's
/// oversized entries are dropped on load.
#[test]
fn output_assignments_are_validated_and_persisted() {
    let dir = tempfile::tempdir().expect("tmp");
    let with_outputs = || {
        let mut o = opts(dir.path(), 8);
        o.outputs = vec!["ears:1,2".into(), "ears:3".into()];
        o
    };
    let (store, _) = open_with(with_outputs());
    register(&store, "a", "tok-a");
    let assign = |output: &str, mix: Option<&str>| {
        store.apply(cmd(
            "",
            Op::AssignOutput {
                output: output.into(),
                mix: mix.map(str::to_string),
            },
        ))
    };
    let before = store.snapshot();
    assert!(matches!(
        assign("ears:5,6", Some("a")),
        Err(StoreError::UnknownOutput(_))
    ));
    assert!(matches!(
        assign("ears:1,2", Some("nobody")),
        Err(StoreError::UnknownClient(_))
    ));
    assert_eq!(store.snapshot(), before, "a refusal changed the state");

    let mut rx = store.events();
    let applied = assign("ears:1,2", Some("a")).expect("assign");
    assert_eq!(applied.sequence, before.sequence + 1);
    assert!(matches!(
        &drain(&mut rx)[..],
        [Event { change: Change::OutputAssigned { output, mix: Some(m) }, .. }]
            if output == "ears:1,2" && m == "a"
    ));
    assert_eq!(
        assign("ears:1,2", Some("a")).expect("again").events.len(),
        0,
        "the same assignment is a no-op"
    );
    assign("ears:3", Some("CUE")).expect("cue");
    assign("ears:3", None).expect("remove");
    store.flush().expect("flush");
    drop(store);

    let (store, _) = open_with(with_outputs());
    let a = store.output_assignments();
    assert_eq!(a.get("ears:1,2"), Some(&Some("a".to_string())));
    assert_eq!(
        a.get("ears:3"),
        Some(&None),
        "a removal is kept, not forgotten"
    );
    drop(store);

    // A damaged file: an absurd key is dropped, the rest kept.
    let path = dir.path().join("state.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    v["outputs"]["x".repeat(5000)] = "a".into();
    std::fs::write(&path, v.to_string()).expect("write");
    let (store, _) = open_with(with_outputs());
    assert_eq!(store.output_assignments().len(), 2);
}
