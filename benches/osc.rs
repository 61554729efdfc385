//! OSC dispatch on one core, in-process: a datagram through the allow-list, nesting scan,
//! decode, address parse, `{m}` lookup and `Store::apply` (validation, events, engine
//! snapshot) — what the UDP task does per datagram, without the socket.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use monmix::control::osc::{AllowList, OscCore, OscSettings};
use monmix::state::{hash_token, Command, Op, Store, StoreOptions};
use rosc::{OscMessage, OscPacket, OscType};

fn core(dir: &std::path::Path) -> OscCore {
    let mut o = StoreOptions::new(dir.join("state.json"), 16);
    o.debounce = Duration::from_millis(100);
    let (store, _) = Store::open(o, Box::new(|p| drop(black_box(p)))).unwrap();
    let store = Arc::new(store);
    for k in 0..16 {
        let id = format!("client-{k}");
        store
            .apply(Command::new(
                &id,
                Op::Register {
                    token_hash: hash_token("t"),
                    name: format!("Player {k}"),
                },
            ))
            .unwrap();
        store
            .apply(Command::new(
                &id,
                Op::SetChannels {
                    channels: (0..16).collect(),
                },
            ))
            .unwrap();
    }
    OscCore::new(
        store,
        OscSettings {
            server_name: "bench".into(),
            channels: 16,
            lease: Duration::from_secs(10),
            reply_port: None,
            touchosc_mix: "1".into(),
            allow: AllowList::parse(&monmix::config::OscConfig::default().allow).unwrap(),
            max_subscribers: 64,
            performers: Vec::new(),
        },
    )
}

fn enc(addr: &str, args: Vec<OscType>) -> Vec<u8> {
    rosc::encoder::encode(&OscPacket::Message(OscMessage {
        addr: addr.into(),
        args,
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut core = core(dir.path());
    let from: SocketAddr = "192.168.1.50:9001".parse().unwrap();
    // Faders moving: distinct values so every datagram is a real change.
    let sets: Vec<Vec<u8>> = (0..1000)
        .map(|k| {
            enc(
                &format!("/mix/{}/ch/{}/fader", k % 16 + 1, k % 16 + 1),
                vec![OscType::Float((k % 997) as f32 / 1000.0)],
            )
        })
        .collect();
    let by_name: Vec<Vec<u8>> = (0..1000)
        .map(|k| {
            enc(
                &format!("/mix/player {}/ch/3/gain", k % 16),
                vec![OscType::Float((k % 991) as f32 / 1000.0)],
            )
        })
        .collect();
    let query = enc("/mix/5/ch/3/gain", vec![]);
    let bad = enc("/mix/1/ch/1/gain", vec![OscType::Float(f32::NAN)]);
    let mut out = Vec::with_capacity(16);
    let mut g = c.benchmark_group("osc");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("set_fader_by_position_apply", |b| {
        b.iter(|| {
            i = (i + 1) % sets.len();
            core.handle_datagram(Instant::now(), &sets[i], from, &mut out);
            out.clear();
        })
    });
    g.bench_function("set_gain_by_name_apply", |b| {
        b.iter(|| {
            i = (i + 1) % by_name.len();
            core.handle_datagram(Instant::now(), &by_name[i], from, &mut out);
            out.clear();
        })
    });
    g.bench_function("query", |b| {
        b.iter(|| {
            core.handle_datagram(Instant::now(), &query, from, &mut out);
            out.clear();
        })
    });
    g.bench_function("drop_nan", |b| {
        b.iter(|| {
            core.handle_datagram(Instant::now(), &bad, from, &mut out);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
