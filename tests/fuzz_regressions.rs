//! Regression tests for what fuzzing found (fuzz/README.md lists every finding). Each
//! crashing input is also kept in `fuzz/corpus/<target>/`, which `tests/fuzz_smoke.rs`
//! replays.

use monmix::fuzzing;
use monmix::state::model::{sanitize, MAX_SEQUENCE};
use monmix::state::persist::parse_state;
use monmix::state::{Command, Op, Store, StoreOptions};

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
