//! The mixer kernel end to end on the `tones` input: which channel reaches which side of
//! which mix, at which level, checked by FFT.

use crate::common::fft;
use crate::common::reference_mix;

use fft::{assert_absent, assert_level, channel, tone_level_dbfs};
use monmix::audio::tones::{tone_frequency, Tones};
use monmix::audio::Generator;
use monmix::engine::{ChannelParams, EngineParams, MixParams, Mixer};
use reference_mix::{check_reference_mix, on, reference_mix};

const FRAME: usize = 480;

/// Runs `frames` frames of `Tones::new(channels)` through a mixer and returns the stereo
/// output of every slot in `params`. One extra frame first is thrown away: it is the
/// ramp from silence to the first params.
fn run(channels: usize, params: &EngineParams, frames: usize) -> Vec<Vec<f32>> {
    let slots = params.mixes.len();
    let mut mixer = Mixer::new(channels, FRAME, slots);
    mixer.set_params(params);
    let mut tones = Tones::new(channels);
    let mut input = vec![0.0; channels * FRAME];
    let mut frame = vec![0.0; 2 * FRAME];
    let mut outs = vec![Vec::with_capacity(2 * FRAME * frames); slots];
    for i in 0..=frames {
        tones.render(&mut input);
        assert!(mixer.process_input(&input));
        for (slot, out) in outs.iter_mut().enumerate() {
            assert!(mixer.mix(slot, &mut frame));
            if i > 0 {
                out.extend_from_slice(&frame);
            }
        }
    }
    outs
}

#[test]
fn tones_reach_their_side_at_their_level_and_muted_or_unsubscribed_do_not() {
    let params = EngineParams::new(vec![Some(reference_mix())]);
    let out = run(8, &params, 100);
    let (l, r) = (channel(&out[0], 2, 0), channel(&out[0], 2, 1));
    assert_eq!(l.len(), 48_000);
    check_reference_mix(&l, &r);
}

#[test]
fn solo_leaves_only_the_soloed_channel() {
    let mut mix = MixParams {
        channels: vec![on(1.0, 0.0), on(1.0, 0.0)],
        master: 1.0,
    };
    mix.channels[1].soloed = true;
    let out = run(2, &EngineParams::new(vec![Some(mix)]), 20);
    let l = channel(&out[0], 2, 0);
    // Centre pan: −3 dB on each side.
    assert_level(
        "soloed 370 Hz",
        tone_level_dbfs(&l, tone_frequency(1)),
        -23.01,
        0.5,
    );
    assert_absent(
        "unsoloed 310 Hz",
        tone_level_dbfs(&l, tone_frequency(0)),
        -80.0,
    );
}

#[test]
fn mixes_are_independent_and_master_applies() {
    let mut a = MixParams {
        channels: vec![on(1.0, 0.0), ChannelParams::default()],
        master: 1.0,
    };
    let mut b = a.clone();
    b.channels.swap(0, 1);
    b.master = 2.0;
    a.channels[0].pan = -1.0;
    let params = EngineParams::new(vec![Some(a), None, Some(b)]);
    let out = run(2, &params, 20);
    let f = tone_frequency;
    let a_left = channel(&out[0], 2, 0);
    assert_level("mix A 310 Hz", tone_level_dbfs(&a_left, f(0)), -20.0, 0.5);
    assert_absent("mix A 370 Hz", tone_level_dbfs(&a_left, f(1)), -80.0);
    assert!(out[1].iter().all(|&s| s == 0.0), "empty slot is silent");
    let b_left = channel(&out[2], 2, 0);
    // +6 dB master, −3 dB centre pan.
    assert_level(
        "mix B 370 Hz",
        tone_level_dbfs(&b_left, f(1)),
        -20.0 + 6.02 - 3.01,
        0.5,
    );
    assert_absent("mix B 310 Hz", tone_level_dbfs(&b_left, f(0)), -80.0);
}
