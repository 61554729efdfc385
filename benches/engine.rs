//! Cost of the mixing engine per 10 ms frame (480 samples at 48 kHz) for 32 inputs.
//! Throughput is in mix-frames, so criterion's "elem/s" inverts to µs per stereo mix-frame
//! (including each tick's share of deinterleaving and input metering).
//! Results and their reading: benches/BENCHMARKS.md, section "Engine".
//!
//! Each criterion sample reports the *fastest* tick among its iterations (times `iters`),
//! not the sum: this 2-core machine is shared with compilers and test runs, and a mean over
//! wall time mostly measured them. The fastest tick is the cost of the work itself.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Bencher, BenchmarkId, Criterion, Throughput};
use monmix::audio::tones::Tones;
use monmix::audio::Generator;
use monmix::engine::{ChannelParams, EngineParams, MixParams, Mixer};

const CHANNELS: usize = 32;
const FRAME: usize = 480;

/// `mixes` mixes with every channel subscribed, pans spread. With `gain` 0.25 the 32 tones
/// stay under the limiter's ceiling; with 1.0 the limiter works on every frame.
fn params(mixes: usize, gain: f32) -> EngineParams {
    let mix = |m: usize| MixParams {
        channels: (0..CHANNELS)
            .map(|c| ChannelParams {
                gain,
                pan: ((c + m) % 9) as f32 / 4.0 - 1.0,
                subscribed: true,
                muted: false,
                soloed: false,
            })
            .collect(),
        master: 1.0,
    };
    EngineParams::new((0..mixes).map(|m| Some(mix(m))).collect())
}

/// One engine tick's work: load the input frame, then compute every mix.
fn tick(mixer: &mut Mixer, input: &[f32], out: &mut [f32]) {
    mixer.process_input(input);
    for slot in 0..mixer.max_mixes() {
        mixer.mix(slot, out);
        black_box(&*out);
    }
}

/// Runs `f` once per iteration and reports the fastest run, scaled to `iters`.
fn best_of(b: &mut Bencher, mut f: impl FnMut()) {
    b.iter_custom(|iters| {
        let mut best = Duration::MAX;
        for _ in 0..iters {
            let t = Instant::now();
            f();
            best = best.min(t.elapsed());
        }
        best * u32::try_from(iters).unwrap_or(u32::MAX)
    })
}

fn setup(mixes: usize, gain: f32) -> (Mixer, Vec<f32>, Vec<f32>) {
    let mut mixer = Mixer::new(CHANNELS, FRAME, mixes);
    let mut input = vec![0.0; CHANNELS * FRAME];
    Tones::new(CHANNELS).render(&mut input);
    mixer.set_params(&params(mixes, gain));
    let mut out = vec![0.0; 2 * FRAME];
    tick(&mut mixer, &input, &mut out); // finish the ramp-in: steady state from here
    (mixer, input, out)
}

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("tick_32in_480");
    // The fixed part of a tick, shared by all mixes: deinterleave + input meters.
    let (mut mixer, input, _) = setup(1, 0.25);
    g.bench_function("input_only", |b| {
        best_of(b, || {
            mixer.process_input(black_box(&input));
        })
    });
    for mixes in [1, 16, 64] {
        g.throughput(Throughput::Elements(mixes as u64));
        let (mut mixer, input, mut out) = setup(mixes, 0.25);
        g.bench_function(BenchmarkId::new("steady", mixes), |b| {
            best_of(b, || tick(&mut mixer, &input, &mut out))
        });

        // Every tick gets new params: every channel of every mix ramps.
        let (mut mixer, input, mut out) = setup(mixes, 0.25);
        let alternate = [params(mixes, 0.2), params(mixes, 0.25)];
        let mut k = 0;
        g.bench_function(BenchmarkId::new("ramping", mixes), |b| {
            best_of(b, || {
                k ^= 1;
                mixer.set_params(&alternate[k]);
                tick(&mut mixer, &input, &mut out)
            })
        });

        let (mut mixer, input, mut out) = setup(mixes, 1.0);
        g.bench_function(BenchmarkId::new("limiting", mixes), |b| {
            best_of(b, || tick(&mut mixer, &input, &mut out))
        });
    }
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
