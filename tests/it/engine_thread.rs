//! The engine thread: clocked by its input, streaming mixes to taps, counting underruns and
//! overruns, metering, attaching and detaching listeners, stopping.

use crate::common::feeder;
use crate::common::fft;
use crate::common::reference_mix;

use std::time::{Duration, Instant};

use feeder::Feeder;
use fft::channel;
use monmix::engine::{Engine, EngineError, EngineOptions, EngineParams};
use monmix::frames::pipe;
use reference_mix::{check_reference_mix, reference_mix};

const CFG: EngineOptions = EngineOptions {
    channels: 8,
    frame_len: 480,
    max_mixes: 4,
    max_taps: 2,
};

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn streams_a_mix_meters_it_and_plays_silence_when_input_stops() {
    let (feeder, input) = Feeder::start(CFG.channels, CFG.frame_len);
    let engine = Engine::spawn(CFG, input).unwrap();
    engine.publish(EngineParams::new(vec![Some(reference_mix())]));
    let mut tap = engine.attach(0).unwrap();
    assert_eq!(tap.slot(), 0);

    let mut frame = vec![0.0; 2 * CFG.frame_len];
    // The spectrum is checked over one second of *contiguous* audio. A scheduling hiccup
    // of this busy test machine (an underrun: a frame of silence; an overrun or a tap
    // drop: a skipped frame) cuts the tones, and the cut spreads energy across the
    // spectrum (failed CI: an absent tone at -76 dBFS). Such a window is counted, not
    // judged: the mix is checked on the first clean one, and a clean one must come.
    let glitches = |e: &monmix::engine::EngineHandle| {
        let s = e.stats().snapshot();
        s.underruns + s.overruns + s.tap_drops
    };
    let mut out = Vec::new();
    let mut dirty = 0;
    for i in 0..5 {
        assert!(
            tap.recv(&mut frame, Instant::now() + Duration::from_secs(1)),
            "frame {i} did not arrive"
        ); // the ramp-in of the first frames
    }
    for _attempt in 0..5 {
        let before = glitches(&engine);
        out.clear();
        for i in 0..100 {
            assert!(
                tap.recv(&mut frame, Instant::now() + Duration::from_secs(1)),
                "frame {i} did not arrive"
            );
            out.extend_from_slice(&frame);
        }
        if glitches(&engine) == before {
            break;
        }
        dirty += 1;
    }
    assert!(
        dirty < 5,
        "no second without an underrun, overrun or tap drop"
    );
    if dirty > 0 {
        eprintln!("{dirty} one-second window(s) with a scheduling glitch skipped");
    }
    check_reference_mix(&channel(&out, 2, 0), &channel(&out, 2, 1));

    let m = engine.meters();
    let input0 = m.input(0).unwrap();
    assert!((input0.peak - 0.1).abs() < 2e-3, "input peak {input0:?}");
    assert!(
        (input0.rms - 0.1 / 2f32.sqrt()).abs() < 2e-3,
        "input rms {input0:?}"
    );
    let muted_input = m.input(2).unwrap();
    assert!(
        (muted_input.peak - 0.1).abs() < 2e-3,
        "meters are pre-fader"
    );
    assert!(
        (m.mix(0).unwrap().peak - 0.1).abs() < 2e-3,
        "{:?}",
        m.mix(0)
    );
    assert_eq!(
        m.mix(1).unwrap().peak,
        0.0,
        "a mix nobody hears is not computed"
    );
    let before = engine.stats().snapshot();
    assert!(before.ticks >= 105, "{before:?}");

    // Input stops but stays open: the engine keeps ticking on silence and counts it.
    let writer = feeder.stop();
    std::thread::sleep(Duration::from_millis(400));
    let after = engine.stats().snapshot();
    assert!(after.underruns >= before.underruns + 15, "{after:?}");
    assert!(after.ticks >= before.ticks + 15, "{after:?}");
    assert!(
        after.tap_drops > 0,
        "unread tap overflows and counts: {after:?}"
    );
    assert_eq!(m.input(0).unwrap().peak, 0.0, "silence meters as silence");
    assert_eq!(m.mix(0).unwrap().peak, 0.0);
    while tap.try_recv(&mut frame) {} // what queued up, the tones' tail among it
    assert!(tap.recv(&mut frame, Instant::now() + Duration::from_secs(1)));
    assert!(
        frame.iter().all(|&s| s == 0.0),
        "listeners get silence, not nothing"
    );

    // Detach, then the freed place can be used; limits are enforced.
    drop(tap);
    let mut taps = Vec::new();
    wait_for("the dropped tap to be retired", || {
        taps.extend(engine.attach(1).ok());
        taps.len() == 2
    });
    assert!(matches!(
        engine.attach(2),
        Err(EngineError::TooManyTaps { max: 2 })
    ));
    assert!(matches!(
        engine.attach(4),
        Err(EngineError::SlotOutOfRange { slot: 4, max: 4 })
    ));

    // Closing the input stops the engine.
    drop(writer);
    wait_for("engine stop", || !engine.is_running());
    assert!(matches!(engine.attach(0), Err(EngineError::Stopped)));
}

#[test]
fn backlog_is_shed_as_overruns_and_closed_input_stops_the_engine() {
    let (mut w, r) = pipe(CFG.channels * CFG.frame_len, 16);
    for _ in 0..10 {
        assert!(w.push(&vec![0.0; CFG.channels * CFG.frame_len]));
    }
    drop(w);
    let engine = Engine::spawn(CFG, r).unwrap();
    wait_for("engine stop", || !engine.is_running());
    let s = engine.stats().snapshot();
    assert_eq!((s.overruns, s.ticks, s.underruns), (7, 3, 0), "{s:?}");
}

#[test]
fn shutdown_joins_the_thread_and_rejects_bad_config() {
    let (feeder, input) = Feeder::start(CFG.channels, CFG.frame_len);
    let engine = Engine::spawn(CFG, input).unwrap();
    let clone = engine.clone();
    wait_for("ticks", || engine.stats().snapshot().ticks > 2);
    clone.shutdown();
    assert!(!engine.is_running());
    engine.shutdown(); // idempotent
    drop(feeder.stop());

    let (_w, r) = pipe(3, 4);
    assert!(matches!(
        Engine::spawn(CFG, r),
        Err(EngineError::InputShape {
            expected: 3840,
            got: 3
        })
    ));
    let (_w, r) = pipe(3840, 4);
    let bad = EngineOptions { max_taps: 0, ..CFG };
    assert!(matches!(
        Engine::spawn(bad, r),
        Err(EngineError::InvalidConfig(_))
    ));
}
