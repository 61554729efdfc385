//! Fuzz entry points: one function per target, shared by the cargo-fuzz crate in `fuzz/`
//! and the nightly-free smoke run in `tests/it/fuzz_smoke.rs`. See `fuzz/README.md`.
//!
//! Each target drives the real code path with bytes from the fuzzer and panics when an
//! invariant breaks (a panic inside the code under test counts the same):
//!
//! - [`ws_message`]: newline-separated text frames through a WebSocket [`Session`]
//!   (parse, validate, dispatch into a real [`Store`]). A frame answered with an `error`
//!   changes nothing; every reply is an object with a `type`; the store stays sane.
//! - [`osc_packet`]: one UDP datagram through [`OscCore`] (size and nesting checks, rosc
//!   decode, dispatch, feedback to a subscriber). Nothing applied means nothing changed;
//!   every datagram sent back encodes; the store stays sane.
//! - [`state_file`]: bytes as `state.json` ([`parse_state`]). An accepted file is in range,
//!   re-serializes and re-parses to an equal state with no repairs, and a store opened on
//!   it can take a change.
//! - [`sdp_offer`]: a WHEP POST body: UTF-8 check, [`precheck_offer`], the SDP parser,
//!   then the sans-I/O peer connection under `webrtc` (remote description, answer, local
//!   description) as `negotiate` drives it. Clean error or an answer, never a panic.
//!
//! "Sane" means [`sanitize`] has nothing to repair: whatever the store holds could be
//! written and loaded again unchanged.
//!
//! Per-input cost is kept low: each thread keeps one store (in `/dev/shm` when there is
//! one) and puts it back to the same base state before each input, so a crash found by
//! one input reproduces from that input alone.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use monmix::config::SecurityConfig;
use monmix::control::osc::{AllowList, OscCore, OscSettings, Out};
use monmix::control::protocol;
use monmix::control::session::{Hub, Limits, Session};
use monmix::state::model::{
    sanitize, StateFile, GAIN_MAX, GAIN_MIN, MAX_CHANNEL_INDEX, PAN_MAX, PAN_MIN,
};
use monmix::state::persist::parse_state;
use monmix::state::{hash_token, Command, Event, Op, Store, StoreError, StoreOptions};
use monmix::stream::transport::precheck_offer;
use monmix::stream::StreamError;

/// Input channels of the fuzzed server.
pub const CHANNELS: usize = 8;
/// Admin PIN of the fuzzed server (in the dictionary and the corpus).
pub const ADMIN_PIN: &str = "1234";
/// Engineer token of the fuzzed server.
pub const ENGINEER_TOKEN: &str = "eng-token";
/// Client `c-b` of the base state owns this token; `c-a` and `web-abc123` have none
/// (imported, unclaimed).
pub const TOKEN_B: &str = "tok-b";

/// The state every ws/osc input starts from: three clients, one with presets.
const BASE_STATE: &str = r#"{
  "format_version": 1,
  "channels_state": {
    "c-a": {"channels": [0, 1, 2], "gains": {"0": 1.0, "1": 0.5}, "pans": {"1": -0.5},
            "mutes": {"2": true}, "solos": {"0": true}, "master_gain": 0.9, "timestamp": 1,
            "name": "Alice",
            "presets": {"verse": {"channels": [0], "gains": {"0": 2.0}, "master_gain": 1.0}}},
    "c-b": {"channels": [3, 4], "master_gain": 1.0, "timestamp": 2, "name": "Bob"},
    "web-abc123": {"channels": [], "master_gain": 1.0, "timestamp": 3}
  },
  "client_order": ["c-a", "c-b", "web-abc123"]
}"#;

fn base_state() -> StateFile {
    static BASE: OnceLock<StateFile> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut s: StateFile = serde_json::from_str(BASE_STATE).expect("BASE_STATE parses");
        assert!(sanitize(&mut s).notes.is_empty(), "BASE_STATE is sane");
        s
    })
    .clone()
}

/// Where a thread's fuzz store lives: tmpfs if there is one (the persister writes there).
fn scratch_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let root = Path::new("/dev/shm");
    let root = if root.is_dir() {
        root.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    root.join(format!(
        "monmix-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// One store per thread, reset to [`BASE_STATE`] before each input.
struct Fixture {
    dir: PathBuf,
    store: Arc<Store>,
    events: tokio::sync::broadcast::Receiver<Event>,
    osc: OscSettings,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = scratch_dir();
        let mut opts = StoreOptions::new(dir.join("state.json"), CHANNELS);
        opts.debounce = Duration::from_millis(50);
        let (store, _) = Store::open(opts, Box::new(|_| {})).expect("fuzz store opens");
        let store = Arc::new(store);
        let events = store.events();
        let osc = OscSettings {
            server_name: "fuzz".into(),
            channels: CHANNELS,
            lease: Duration::from_secs(10),
            reply_port: None,
            touchosc_mix: "1".into(),
            allow: AllowList::parse(&monmix::config::OscConfig::default().allow)
                .expect("default osc.allow parses"),
            max_subscribers: 4,
            performers: vec![(
                AllowList::parse(&["127.0.0.2/32"]).expect("performer source parses"),
                "2".into(),
            )],
        };
        Fixture {
            dir,
            store,
            events,
            osc,
        }
    }

    /// Back to the base state: every client deleted, the base imported again (tokens
    /// dropped by the import), `c-b` given [`TOKEN_B`].
    fn reset(&mut self) {
        for c in self.store.clients() {
            self.store
                .apply(Command::new(c.id, Op::Delete))
                .expect("delete during reset");
        }
        self.store.import(base_state()).expect("base import");
        self.store
            .apply(Command::new(
                "c-b",
                Op::SetToken {
                    token_hash: hash_token(TOKEN_B),
                },
            ))
            .expect("token during reset");
        self.drain();
    }

    fn drain(&mut self) -> Vec<Event> {
        let mut v = Vec::new();
        loop {
            match self.events.try_recv() {
                Ok(e) => v.push(e),
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => return v,
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

thread_local! {
    static FIXTURE: RefCell<Option<Fixture>> = const { RefCell::new(None) };
}

fn with_fixture<R>(f: impl FnOnce(&mut Fixture) -> R) -> R {
    FIXTURE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let fx = slot.get_or_insert_with(Fixture::new);
        fx.reset();
        f(fx)
    })
}

/// Panics unless the state is what the store promises: everything in range, and nothing
/// for [`sanitize`] to repair.
pub fn assert_sane(state: &StateFile, what: &str) {
    let in_range = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
    for (id, m) in &state.channels_state {
        assert!(
            in_range(m.master_gain, GAIN_MIN, GAIN_MAX),
            "{what}: {id} master {}",
            m.master_gain
        );
        assert!(
            m.gains
                .iter()
                .all(|(c, g)| *c <= MAX_CHANNEL_INDEX && in_range(*g, GAIN_MIN, GAIN_MAX)),
            "{what}: {id} gains {:?}",
            m.gains
        );
        assert!(
            m.pans
                .iter()
                .all(|(c, p)| *c <= MAX_CHANNEL_INDEX && in_range(*p, PAN_MIN, PAN_MAX)),
            "{what}: {id} pans {:?}",
            m.pans
        );
        assert!(
            m.channels.windows(2).all(|w| w[0] < w[1]),
            "{what}: {id} channels not sorted/unique {:?}",
            m.channels
        );
        let params = m.to_params(CHANNELS);
        assert!(
            params.master.is_finite()
                && params
                    .channels
                    .iter()
                    .all(|c| c.gain.is_finite() && c.pan.is_finite()),
            "{what}: {id} engine params not finite"
        );
    }
    let mut again = state.clone();
    let notes = sanitize(&mut again).notes;
    assert!(notes.is_empty(), "{what}: sanitize repaired {notes:?}");
    assert_eq!(&again, state, "{what}: sanitize changed the state");
}

// ---------------------------------------------------------------------------------------
// WebSocket

/// Text frames, one per line (`\n`), through one WebSocket session; a second session
/// (the engineer, with the admin PIN) sees the events as `param_sync`.
pub fn ws_message(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    // The parser on its own, with the whole input as one frame (newlines inside JSON).
    check_parse(&text);
    with_fixture(|fx| {
        let hub = Hub::new(
            "fuzz".into(),
            fx.store.clone(),
            (0..CHANNELS).map(|c| format!("Ch {}", c + 1)).collect(),
            10.0,
            SecurityConfig {
                admin_pin: ADMIN_PIN.into(),
                engineer_tokens: vec![ENGINEER_TOKEN.into()],
                ..SecurityConfig::default()
            },
            Limits::default(),
        );
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let t0 = Instant::now();
        let mut session = Session::new(1, ip, &hub.limits, t0);
        let mut watcher = Session::new(2, ip, &hub.limits, t0);
        let hello = format!(r#"{{"type":"hello","admin_pin":"{ADMIN_PIN}"}}"#);
        let welcome = watcher.handle_text(&hub, &hello, t0);
        assert_eq!(welcome[0]["type"], "welcome", "engineer hello: {welcome:?}");
        fx.drain();
        for (n, line) in text.split('\n').enumerate() {
            let now = t0 + Duration::from_millis(n as u64);
            // The engineer follows whatever the session speaks for, to get its param_sync.
            watcher.watching = session.client_id.clone();
            let before = fx.store.snapshot();
            let replies = session.handle_text(&hub, line, now);
            let after = fx.store.snapshot();
            let mut refused = false;
            for r in &replies {
                let ty = r.get("type").and_then(Value::as_str);
                assert!(ty.is_some(), "reply without a type: {r}");
                if ty == Some("error") {
                    refused = true;
                    assert!(
                        r.get("code").and_then(Value::as_str).is_some(),
                        "error without code: {r}"
                    );
                }
            }
            if refused {
                assert_eq!(replies.len(), 1, "an error comes alone: {replies:?}");
                assert_eq!(before, after, "a refused frame changed the state: {line:?}");
            }
            if before.sequence != after.sequence {
                assert_sane(&after, "after a ws frame");
            }
            for ev in fx.drain() {
                // A session never hears back its own change.
                if ev.origin == session.id {
                    assert!(session.on_event(&ev).is_none(), "echo of {ev:?}");
                }
                if let Some(v) = watcher.on_event(&ev) {
                    assert_eq!(v["type"], "param_sync");
                }
            }
        }
        hub.leave(&session);
        hub.leave(&watcher);
    });
}

fn check_parse(text: &str) {
    match protocol::parse(text, Limits::default().max_message) {
        Ok(_) => {}
        Err(e) => {
            let v = protocol::error_msg(&e);
            assert_eq!(v["type"], "error");
            assert!(serde_json::to_string(&v).is_ok());
        }
    }
}

// ---------------------------------------------------------------------------------------
// OSC

fn osc_peer() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 50000))
}

/// A surface bound to mix 2 (`[[osc.performer]]`): it may change that mix only.
fn osc_performer() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 50002))
}

fn osc_subscriber() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 50001))
}

/// One datagram from a surface, with a second surface subscribed to every mix (so the
/// feedback path runs for whatever the datagram changes).
pub fn osc_packet(data: &[u8]) {
    static SUBSCRIBE: OnceLock<Vec<u8>> = OnceLock::new();
    let subscribe = SUBSCRIBE.get_or_init(|| {
        rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
            addr: "/subscribe".into(),
            args: vec![],
        }))
        .expect("encode /subscribe")
    });
    with_fixture(|fx| {
        let mut core = OscCore::new(fx.store.clone(), fx.osc.clone());
        let now = Instant::now();
        let mut out = Vec::new();
        core.handle_datagram(now, subscribe, osc_subscriber(), &mut out);
        assert_eq!(core.subscriber_count(), 1);
        out.clear();
        let before = fx.store.snapshot();
        // Odd-length datagrams come from the performer's surface.
        let performer = data.len() % 2 == 1;
        let from = if performer {
            osc_performer()
        } else {
            osc_peer()
        };
        core.handle_datagram(now, data, from, &mut out);
        let after = fx.store.snapshot();
        if performer {
            let own = core.resolve("2");
            for (id, mix) in &after.channels_state {
                if Some(id) != own.as_ref() {
                    assert_eq!(
                        before.channels_state.get(id),
                        Some(mix),
                        "a performer's surface changed another mix ({id})"
                    );
                }
            }
        }
        let applied = core.stats().applied.load(Ordering::Relaxed);
        if applied == 0 {
            assert_eq!(before, after, "nothing applied but the state changed");
        }
        if before.sequence != after.sequence {
            assert_sane(&after, "after an osc datagram");
        }
        for ev in fx.drain() {
            core.on_event(now, &ev, &mut out);
        }
        check_out(&out);
    });
}

/// Everything the core wants sent must encode (the socket task drops what does not).
fn check_out(out: &[Out]) {
    for o in out {
        let bytes = rosc::encoder::encode(&rosc::OscPacket::Message(o.msg.clone()));
        assert!(bytes.is_ok(), "reply does not encode: {:?}", o.msg);
        for a in &o.msg.args {
            if let rosc::OscType::Float(f) = a {
                assert!(f.is_finite(), "non-finite value sent: {:?}", o.msg);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// State file

/// `state.json` bytes as the loader sees them.
pub fn state_file(data: &[u8]) {
    let path = Path::new("fuzz/state.json");
    let state = match parse_state(data, path) {
        Ok((state, _repairs)) => state,
        Err(StoreError::Corrupt { .. } | StoreError::UnsupportedFormat { .. }) => return,
        Err(e) => panic!("unexpected loader error: {e}"),
    };
    assert_sane(&state, "loaded state");
    // What the persister writes must load back unchanged, with nothing to repair.
    let bytes = serde_json::to_vec_pretty(&state).expect("a loaded state serializes");
    match parse_state(&bytes, path) {
        Ok((again, repairs)) => {
            assert_eq!(repairs, 0, "a written state needed repairs");
            assert_eq!(again, state, "write + load changed the state");
        }
        Err(e) => panic!("a written state does not load: {e}"),
    }
    // `monmix state import` of this file into a running store.
    with_fixture(|fx| match fx.store.import(state.clone()) {
        Ok(_) => assert_sane(&fx.store.snapshot(), "after import"),
        Err(StoreError::TooManyClients { .. }) => {}
        Err(e) => panic!("unexpected import error: {e}"),
    });
    open_and_change(&bytes);
}

/// A store started on this file takes a change (the first command after a restart).
fn open_and_change(bytes: &[u8]) {
    let dir = scratch_dir();
    let path = dir.join("state.json");
    let run = || -> Result<(), StoreError> {
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::Io {
            path: dir.clone(),
            source: e,
        })?;
        std::fs::write(&path, bytes).map_err(|e| StoreError::Io {
            path: path.clone(),
            source: e,
        })?;
        let (store, _) = Store::open(StoreOptions::new(&path, CHANNELS), Box::new(|_| {}))?;
        let id = match store.clients().first() {
            Some(c) => c.id.clone(),
            None => {
                store.apply(Command::new(
                    "fuzz-new",
                    Op::Register {
                        token_hash: hash_token("t"),
                        name: "New".into(),
                    },
                ))?;
                "fuzz-new".to_owned()
            }
        };
        let before = store.sequence();
        let master = store.mix(&id).map_or(1.0, |m| m.master_gain);
        let next = if master == 0.5 { 0.25 } else { 0.5 };
        let applied = store.apply(Command::new(id, Op::SetMaster { gain: next }))?;
        assert!(
            applied.sequence > before,
            "sequence did not advance: {before} -> {}",
            applied.sequence
        );
        assert_sane(&store.snapshot(), "reopened store");
        Ok(())
    };
    let r = run();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = r {
        panic!("store on a loadable file failed: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// SDP

/// A WHEP POST body, through what `create` and `StreamService::open` do before any socket.
pub fn sdp_offer(data: &[u8]) {
    match answer_offer(data) {
        Ok(answer) => assert!(answer.contains("\nm=audio "), "answer without audio"),
        Err(StreamError::BadOffer(_)) => {}
        Err(e) => panic!("offer handling failed locally: {e}"),
    }
}

/// The answer our WHEP endpoint would send for this body, or why it refuses it
/// ([`StreamError::BadOffer`] is a 400; anything else would be our own failure). Runs the
/// real transport (str0m, ICE-lite, the process's certificate) up to the answer.
pub fn answer_offer(data: &[u8]) -> Result<String, StreamError> {
    use monmix::stream::AudioTransport;
    let sdp = std::str::from_utf8(data)
        .map_err(|_| StreamError::BadOffer("offer is not UTF-8".into()))?;
    // The parser runs on everything (cheap; what `precheck` lets through is a subset).
    let parsed = str0m::change::SdpOffer::from_sdp_string(sdp);
    precheck_offer(sdp)?;
    parsed.map_err(|e| StreamError::BadOffer(format!("unparsable SDP: {e}")))?;
    let transport = transport().ok_or_else(|| StreamError::Internal("no transport".into()))?;
    let local = [std::net::SocketAddr::from(([127, 0, 0, 1], 9))];
    let (answer, _peer) = transport.accept(sdp, &local, Instant::now())?;
    if !answer.contains("\nm=audio ") || answer.contains("m=audio 0 ") {
        return Err(StreamError::BadOffer("audio m-line rejected".into()));
    }
    Ok(answer)
}

/// The transport made once (generating a certificate per input would dominate the cost).
fn transport() -> Option<&'static monmix::stream::Str0mTransport> {
    static T: OnceLock<Option<monmix::stream::Str0mTransport>> = OnceLock::new();
    T.get_or_init(|| monmix::stream::Str0mTransport::new().ok())
        .as_ref()
}
