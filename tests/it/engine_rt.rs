//! The engine thread's real-time contract: in the steady state it never allocates or frees.
//!
//! `assert_no_alloc` (debug builds) aborts the process on an allocation inside its guard,
//! which the engine puts around every iteration. An abort cannot be caught in-process, so
//! each scenario runs in a child process (this same test binary, selected by an env var)
//! and the parent turns the child's abort into a test failure with its stderr. A canary
//! scenario proves the detector really fires in this build.
#![cfg(debug_assertions)]

use crate::common::feeder;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use feeder::Feeder;
use monmix::engine::{ChannelParams, Engine, EngineOptions, EngineParams, MixParams};

const SCENARIO: &str = "MONMIX_RT_SCENARIO";

fn run_child(scenario: &str) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "engine_rt::child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO, scenario)
        .output()
        .unwrap()
}

#[test]
fn engine_thread_never_allocates_with_param_changes_and_tap_churn() {
    let out = run_child("engine");
    assert!(
        out.status.success(),
        "the engine thread allocated or freed memory (or the scenario failed): {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("scenario engine done"));
}

#[test]
fn canary_the_guard_catches_an_allocation() {
    let out = run_child("canary");
    assert!(
        !out.status.success(),
        "an allocation inside the guard went unnoticed"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("memory allocation"),
        "unexpected failure: {err}"
    );
}

/// The child side; does nothing in a normal test run.
#[test]
fn child() {
    match std::env::var(SCENARIO).as_deref() {
        Ok("engine") => engine_scenario(),
        Ok("canary") => {
            assert_no_alloc::assert_no_alloc(|| std::hint::black_box(vec![1u8; 64]).len());
        }
        _ => return,
    }
    println!("scenario {} done", std::env::var(SCENARIO).unwrap());
}

fn params(k: usize) -> EngineParams {
    let ch = |i: usize| ChannelParams {
        gain: ((i + k) % 5) as f32 * 0.4,
        pan: ((i * 7 + k) % 11) as f32 / 5.0 - 1.0,
        subscribed: (i + k) % 3 != 0,
        muted: (i + k) % 7 == 0,
        soloed: k % 4 == 0 && i == 1,
    };
    let mix = |m: usize| MixParams {
        channels: (0..8).map(|i| ch(i + m)).collect(),
        master: 1.0 + (k % 2) as f32,
    };
    EngineParams::new(
        (0..4)
            .map(|m| (m + k) % 4 != 3)
            .map(|on| on.then(|| mix(k)))
            .collect(),
    )
}

fn engine_scenario() {
    let cfg = EngineOptions {
        channels: 8,
        frame_len: 480,
        max_mixes: 4,
        max_taps: 6,
    };
    let (feeder, input) = Feeder::start(cfg.channels, cfg.frame_len);
    let engine = Engine::spawn(cfg, input).unwrap();
    let mut taps = Vec::new();
    let mut frame = vec![0.0; 2 * cfg.frame_len];
    let until = Instant::now() + Duration::from_millis(1500);
    let mut k = 0;
    while Instant::now() < until {
        engine.publish(params(k));
        if k % 3 == 0 {
            if let Ok(t) = engine.attach(k % 4) {
                taps.push(t);
            }
        }
        if k % 5 == 4 && !taps.is_empty() {
            taps.remove(0); // detach: the engine must retire it without freeing
        }
        for t in &mut taps {
            while t.try_recv(&mut frame) {}
        }
        k += 1;
        std::thread::sleep(Duration::from_millis(7));
    }
    let stats = engine.stats().snapshot();
    assert!(stats.ticks >= 100, "{stats:?}");
    assert!(engine.is_running());
    engine.shutdown();
    drop(feeder.stop());
}
