//! The reference mix of the spec and its FFT check, shared by the mixer and engine-thread
//! tests.

use super::fft::{assert_absent, assert_level, tone_level_dbfs};
use monmix::audio::tones::tone_frequency;
use monmix::engine::{ChannelParams, MixParams};

/// A subscribed channel at `gain` and `pan`.
pub fn on(gain: f32, pan: f32) -> ChannelParams {
    ChannelParams {
        gain,
        pan,
        subscribed: true,
        muted: false,
        soloed: false,
    }
}

/// The reference mix of the spec: ch0 hard left at 0 dB, ch2 subscribed but muted,
/// ch3 hard right at −6 dB, everything else unsubscribed.
pub fn reference_mix() -> MixParams {
    let mut channels = vec![ChannelParams::default(); 8];
    channels[0] = on(1.0, -1.0);
    channels[2] = ChannelParams {
        muted: true,
        ..on(1.0, 0.0)
    };
    channels[3] = on(0.5, 1.0);
    MixParams {
        channels,
        master: 1.0,
    }
}

/// Checks a stereo capture of [`reference_mix`] by FFT (needs ≥ 0.1 s).
pub fn check_reference_mix(l: &[f32], r: &[f32]) {
    let f = tone_frequency;
    assert_level("310 Hz left", tone_level_dbfs(l, f(0)), -20.0, 0.5);
    assert_absent("310 Hz right", tone_level_dbfs(r, f(0)), -80.0);
    assert_level("430 Hz right", tone_level_dbfs(r, f(3)), -26.0, 0.5);
    assert_absent("430 Hz left", tone_level_dbfs(l, f(3)), -80.0);
    for (side, x) in [("left", l), ("right", r)] {
        assert_absent(
            &format!("410 Hz (muted) {side}"),
            tone_level_dbfs(x, f(2)),
            -80.0,
        );
        assert_absent(
            &format!("370 Hz (unsubscribed) {side}"),
            tone_level_dbfs(x, f(1)),
            -80.0,
        );
    }
}
