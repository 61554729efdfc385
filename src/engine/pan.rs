//! Constant-power pan law with a −3 dB centre.
//!
//! Why constant power: a source panned across the stereo field keeps the same loudness
//! (L² + R² = 1 everywhere), which is what a musician expects from a pan knob on a phone.

use std::f32::consts::FRAC_PI_4;

/// Left and right gains for `pan` in −1.0 (left) ..= +1.0 (right):
/// `L = cos((p+1)·π/4)`, `R = sin((p+1)·π/4)`. Out-of-range values are clamped.
///
/// The result is floored at 0.0 because `cos(π/2)` in `f32` is −4.4e-8: a hard-panned
/// channel must be *exactly* absent from the other side, not phase-inverted dust.
pub fn pan_gains(pan: f32) -> (f32, f32) {
    let angle = (pan.clamp(-1.0, 1.0) + 1.0) * FRAC_PI_4;
    (angle.cos().max(0.0), angle.sin().max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::FRAC_1_SQRT_2;

    fn close(a: (f32, f32), b: (f32, f32)) -> bool {
        (a.0 - b.0).abs() < 1e-4 && (a.1 - b.1).abs() < 1e-4
    }

    #[test]
    fn law_at_left_centre_right() {
        assert_eq!(pan_gains(-1.0), (1.0, 0.0));
        assert!(
            close(pan_gains(0.0), (FRAC_1_SQRT_2, FRAC_1_SQRT_2)),
            "{:?}",
            pan_gains(0.0)
        );
        assert_eq!(pan_gains(1.0), (0.0, 1.0));
    }

    #[test]
    fn power_is_constant_and_range_clamped() {
        for i in -10..=10 {
            let (l, r) = pan_gains(i as f32 / 10.0);
            assert!((l * l + r * r - 1.0).abs() < 1e-6);
        }
        assert_eq!(pan_gains(-7.0), pan_gains(-1.0));
        assert_eq!(pan_gains(3.0), pan_gains(1.0));
    }
}
