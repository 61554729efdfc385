//! Nightly-free fuzz smoke run, part of `make test`: for each target of `monmix::fuzzing`,
//! replay every file of `fuzz/corpus/<target>/`, then mutate the corpus for a few seconds
//! (byte flips, interesting bytes, inserts, deletes, duplications, splices between corpus
//! files, dictionary tokens from `fuzz/dict/<target>.dict`). No coverage feedback: this
//! catches regressions and shallow bugs; the long coverage-guided runs are `make fuzz`.
//!
//! Environment:
//! - `MONMIX_FUZZ_SECS`: seconds of mutation per target (default 8; 0 = replay only).
//! - `MONMIX_FUZZ_SEED`: the RNG seed (default: from the clock). Every run prints its seed;
//!   a failure prints the seed, the iteration and the failing input as hex.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Longest input the mutator makes (the OSC datagram limit is 8 KiB; a little above it
/// keeps the oversize path covered).
const MAX_LEN: usize = 9 * 1024;
/// Mutated inputs kept for further mutation (a crude stand-in for coverage feedback).
const POOL_MAX: usize = 256;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = root().join("corpus").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| {
            let p = e.path();
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
}

/// Tokens of a libFuzzer dictionary: `"..."` or `name="..."` lines, `\xNN`, `\\`, `\"`.
fn dictionary(target: &str) -> Vec<Vec<u8>> {
    let path = root().join("dict").join(format!("{target}.dict"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let start = l.find('"')?;
            let body = l.get(start + 1..l.len().checked_sub(1)?)?;
            let b = body.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'\\' && i + 1 < b.len() {
                    if b[i + 1] == b'x' && i + 3 < b.len() {
                        let hex = std::str::from_utf8(&b[i + 2..i + 4]).ok()?;
                        out.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 4;
                    } else {
                        out.push(b[i + 1]);
                        i += 2;
                    }
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            Some(out)
        })
        .collect()
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

const INTERESTING: [u8; 12] = [
    0, 1, 0x7f, 0x80, 0xff, b'"', b'\\', b'\n', b'[', b']', b'/', b',',
];

fn mutate(rng: &mut StdRng, input: &mut Vec<u8>, pool: &[Vec<u8>], dict: &[Vec<u8>]) {
    let rounds = rng.random_range(1..=4);
    for _ in 0..rounds {
        let len = input.len();
        match rng.random_range(0..10) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                input[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                input[i] = if rng.random_bool(0.5) {
                    INTERESTING[rng.random_range(0..INTERESTING.len())]
                } else {
                    rng.random()
                };
            }
            2 => {
                let i = rng.random_range(0..=len);
                let n = rng.random_range(1..=8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                input.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(32));
                input.drain(i..i + n);
            }
            4 if len > 0 => {
                // Duplicate a range (deep nesting, repeated lines and fields).
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=(len - i).min(64));
                let piece = input[i..i + n].to_vec();
                let times = rng.random_range(1..=16);
                let at = rng.random_range(0..=len);
                for _ in 0..times {
                    input.splice(at..at, piece.iter().copied());
                }
            }
            5 | 6 if !pool.is_empty() => {
                // Splice: our head + another input's tail, or a chunk of it inserted.
                let other = &pool[rng.random_range(0..pool.len())];
                if other.is_empty() {
                    continue;
                }
                let a = rng.random_range(0..=len);
                let b = rng.random_range(0..other.len());
                if rng.random_bool(0.5) {
                    input.truncate(a);
                    input.extend_from_slice(&other[b..]);
                } else {
                    let n = rng.random_range(1..=(other.len() - b).min(256));
                    input.splice(a..a, other[b..b + n].iter().copied());
                }
            }
            7 | 8 if !dict.is_empty() => {
                let tok = &dict[rng.random_range(0..dict.len())];
                let at = rng.random_range(0..=len);
                if rng.random_bool(0.7) || len == 0 {
                    input.splice(at..at, tok.iter().copied());
                } else {
                    let end = (at + tok.len()).min(len);
                    input.splice(at..end, tok.iter().copied());
                }
            }
            _ if len > 0 => {
                // Arithmetic on a byte (lengths, counts, digits).
                let i = rng.random_range(0..len);
                let d: i8 = rng.random_range(-16..=16);
                input[i] = input[i].wrapping_add(d as u8);
            }
            _ => input.push(rng.random()),
        }
    }
    input.truncate(MAX_LEN);
}

fn run(target: &str, f: fn(&[u8])) {
    let secs: f64 = std::env::var("MONMIX_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8.0);
    let seed: u64 = std::env::var("MONMIX_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let files = corpus(target);
    let dict = dictionary(target);

    for (name, data) in &files {
        if catch_unwind(AssertUnwindSafe(|| f(data))).is_err() {
            panic!(
                "{target}: corpus file {name} fails (input hex: {})",
                hex(data)
            );
        }
    }

    let mut pool: Vec<Vec<u8>> = files.into_iter().map(|(_, d)| d).collect();
    let corpus_len = pool.len();
    let mut rng = StdRng::seed_from_u64(seed);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        let mut input = pool[rng.random_range(0..pool.len())].clone();
        mutate(&mut rng, &mut input, &pool, &dict);
        if catch_unwind(AssertUnwindSafe(|| f(&input))).is_err() {
            panic!(
                "{target}: FUZZ FAILURE at iteration {n} with MONMIX_FUZZ_SEED={seed}\n\
                 input ({} bytes) hex: {}\ninput (lossy): {:?}",
                input.len(),
                hex(&input),
                String::from_utf8_lossy(&input)
            );
        }
        if rng.random_ratio(1, 16) {
            if pool.len() < POOL_MAX {
                pool.push(input);
            } else {
                let i = rng.random_range(corpus_len..POOL_MAX);
                pool[i] = input;
            }
        }
        n += 1;
    }
    println!("{target}: {corpus_len} corpus files replayed, {n} mutated inputs in {secs} s, MONMIX_FUZZ_SEED={seed}");
}

#[test]
fn fuzz_ws_message() {
    run("ws_message", monmix_testkit::fuzzing::ws_message);
}

#[test]
fn fuzz_osc_packet() {
    run("osc_packet", monmix_testkit::fuzzing::osc_packet);
}

#[test]
fn fuzz_state_file() {
    run("state_file", monmix_testkit::fuzzing::state_file);
}

#[test]
fn fuzz_sdp_offer() {
    run("sdp_offer", monmix_testkit::fuzzing::sdp_offer);
}

#[test]
fn dictionaries_parse() {
    for t in ["ws_message", "osc_packet", "state_file", "sdp_offer"] {
        assert!(!dictionary(t).is_empty(), "{t}.dict");
        assert!(Path::new(&root().join("corpus").join(t)).is_dir());
    }
    assert_eq!(
        dictionary("osc_packet")[0],
        b"#bundle\0".to_vec(),
        "\\xNN escapes"
    );
}
