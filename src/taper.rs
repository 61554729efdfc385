//! The fader taper: a 0..1 fader position <-> a gain. The one curve: OSC faders
//! (TouchOSC) use it here, and the page draws its faders from `GET /api/taper`, so
//! the same gain stands at the same place on every surface.
//!
//! Piecewise linear in dB between these points, like a console fader; below 0.05 the
//! *amplitude* falls linearly to silence at 0, so the curve stays continuous, monotonic
//! and invertible all the way down:
//!
//! | position | dB      | gain (linear) |
//! |----------|---------|---------------|
//! | 1.00     | +6.02   | 2.0 (the most a mix takes) |
//! | 0.75     | 0       | 1.0           |
//! | 0.50     | −10     | 0.316         |
//! | 0.25     | −30     | 0.0316        |
//! | 0.05     | −60     | 0.001         |
//! | 0.00     | −inf    | 0             |

use crate::state::model::GAIN_MAX;

/// (position, dB) break points, ascending.
pub const POINTS: [(f64, f64); 5] = [
    (0.05, -60.0),
    (0.25, -30.0),
    (0.5, -10.0),
    (0.75, 0.0),
    // 20·log10(2): the top of the travel is the store's largest gain, 2.0.
    (1.0, 6.020_599_913_279_624),
];

/// Linear gain of -60 dB, the bottom of the dB part of the taper.
pub const FLOOR_GAIN: f64 = 0.001;

pub fn db_to_gain(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// dB of a linear gain; `-inf` for 0.
pub fn gain_to_db(gain: f64) -> f64 {
    if gain <= 0.0 {
        f64::NEG_INFINITY
    } else {
        20.0 * gain.log10()
    }
}

/// Fader position (clamped to 0..=1) -> dB (`-inf` at 0).
pub fn fader_to_db(pos: f64) -> f64 {
    gain_to_db(fader_to_gain(pos))
}

/// Fader position (clamped to 0..=1) -> linear gain (0..=2.0).
pub fn fader_to_gain(pos: f64) -> f64 {
    let p = pos.clamp(0.0, 1.0);
    let (p0, _) = POINTS[0];
    if p < p0 {
        return FLOOR_GAIN * p / p0;
    }
    for w in POINTS.windows(2) {
        let ((a, da), (b, db)) = (w[0], w[1]);
        if p <= b {
            // The top point is 2.0 up to rounding: never hand the store more than it takes.
            return db_to_gain(da + (p - a) / (b - a) * (db - da)).min(GAIN_MAX);
        }
    }
    GAIN_MAX
}

/// Linear gain -> fader position (0..=1; gains above 2.0 read as 1.0).
pub fn gain_to_fader(gain: f64) -> f64 {
    if gain.is_nan() || gain <= 0.0 {
        return 0.0;
    }
    if gain < FLOOR_GAIN {
        return POINTS[0].0 * gain / FLOOR_GAIN;
    }
    let d = gain_to_db(gain);
    for w in POINTS.windows(2) {
        let ((a, da), (b, db)) = (w[0], w[1]);
        if d <= db {
            return (a + (d - da) / (db - da) * (b - a)).clamp(0.0, 1.0);
        }
    }
    1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_points() {
        assert!((fader_to_db(0.75)).abs() < 1e-9);
        assert_eq!(fader_to_gain(1.0), GAIN_MAX);
        assert!((fader_to_db(1.0) - 20.0 * 2f64.log10()).abs() < 1e-12);
        assert!((fader_to_db(0.5) + 10.0).abs() < 1e-9);
        assert!((fader_to_db(0.25) + 30.0).abs() < 1e-9);
        assert!((fader_to_db(0.05) + 60.0).abs() < 1e-9);
        assert_eq!(fader_to_gain(0.0), 0.0);
        assert_eq!(gain_to_fader(0.0), 0.0);
        assert!((gain_to_fader(1.0) - 0.75).abs() < 1e-12);
        assert_eq!(gain_to_fader(2.0), 1.0);
    }

    #[test]
    fn round_trip_and_monotonic() {
        let mut last = -1.0;
        for i in 0..=1000 {
            let p = i as f64 / 1000.0;
            let g = fader_to_gain(p);
            assert!(g > last || (i == 0 && g == 0.0), "not monotonic at {p}");
            last = g;
            assert!((gain_to_fader(g) - p).abs() < 1e-9, "round trip at {p}");
        }
    }
}
