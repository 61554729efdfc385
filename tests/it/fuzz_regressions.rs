//! Regression tests for what fuzzing found (fuzz/README.md lists every finding). Each
//! crashing input is also kept in `fuzz/corpus/<target>/`, which `tests/it/fuzz_smoke.rs`
//! replays.

use monmix::state::model::{sanitize, MAX_SEQUENCE};
use monmix::state::persist::parse_state;
use monmix::state::{Command, Op, Store, StoreOptions};
use monmix_testkit::fuzzing;

fn corpus(target: &str, name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// F1: a state file with `"sequence": 18446744073709551615` loaded fine, and the first
/// change overflowed the sequence (a panic with overflow checks, a wrap to 0 without:
/// the persister then compared generations wrongly).
#[test]
fn f1_huge_sequence_is_clamped_and_the_store_takes_changes() {
    let bytes = corpus("state_file", "big_sequence.json");
    let (state, repairs) = parse_state(&bytes, "x.json".as_ref()).expect("loads");
    assert_eq!(state.sequence, 0);
    assert_eq!(repairs, 1);
    let mut again = state.clone();
    assert!(sanitize(&mut again).notes.is_empty());

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    std::fs::write(&path, &bytes).expect("write");
    let (store, _) = Store::open(StoreOptions::new(&path, 8), Box::new(|_| {})).expect("opens");
    let applied = store
        .apply(Command::new("a", Op::SetMaster { gain: 0.5 }))
        .expect("applies");
    assert_eq!(applied.sequence, 1);
    store.flush().expect("flush");
    drop(store);
    let (on_disk, _) = parse_state(&std::fs::read(&path).expect("read"), &path).expect("loads");
    assert_eq!(on_disk.channels_state["a"].master_gain, 0.5);
    fuzzing::state_file(&bytes);

    // The limit itself still loads unchanged.
    let at_limit = format!(r#"{{"sequence":{MAX_SEQUENCE},"channels_state":{{}}}}"#);
    let (s, repairs) = parse_state(at_limit.as_bytes(), "x.json".as_ref()).expect("loads");
    assert_eq!((s.sequence, repairs), (MAX_SEQUENCE, 0));
}

/// The browser offers of the SDP corpus are answered (the target reaches the peer
/// connection, not only the parser).
#[test]
fn sdp_corpus_offers_get_answers() {
    for name in [
        "chrome_recvonly.sdp",
        "firefox_audio_video.sdp",
        "sendrecv_lf_only.sdp",
    ] {
        let answer = fuzzing::answer_offer(&corpus("sdp_offer", name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(answer.contains("opus/48000"), "{name}: {answer}");
    }
}

/// Not a finding, a guard: rosc decodes `[`/`]` type tags without recursion, but the
/// nested `OscType::Array` it builds is dropped recursively. The deepest nesting that
/// fits in one 8 KiB datagram must be handled on a 2 MiB stack (a tokio worker's).
#[test]
fn deepest_osc_array_fits_a_worker_stack() {
    let depth = 4000;
    let mut tags = String::from(",");
    tags.push_str(&"[".repeat(depth));
    tags.push_str(&"]".repeat(depth));
    let mut data = b"/mix/1/ch/1/gain\0\0\0\0".to_vec();
    data.extend_from_slice(tags.as_bytes());
    data.push(0);
    while data.len() % 4 != 0 {
        data.push(0);
    }
    assert!(data.len() <= monmix::control::osc::core::MAX_DATAGRAM);
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || fuzzing::osc_packet(&data))
        .expect("spawn")
        .join()
        .expect("no stack overflow");
}
