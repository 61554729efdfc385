//! The hot loops of the mixer, written so LLVM vectorizes them: planar contiguous slices,
//! every slice re-cut to the same length `n` before the loop (so indexing has no bounds
//! checks), and no cross-iteration dependency except the per-sample accumulators.

/// Left and right coefficient of one channel in one mix.
pub type Coef = [f32; 2];

/// `l += Σ cᵢ[0]·xᵢ`, `r += Σ cᵢ[1]·xᵢ` for four channels at once. Blocking by four keeps
/// both accumulators in registers across four inputs: one load/store of `l` and `r` per
/// four channels instead of per channel, which is what makes a 32-input mix cheap.
pub fn add4(l: &mut [f32], r: &mut [f32], x: [&[f32]; 4], c: [Coef; 4]) {
    let n = l.len();
    let r = &mut r[..n];
    let (x0, x1, x2, x3) = (&x[0][..n], &x[1][..n], &x[2][..n], &x[3][..n]);
    let [[l0, r0], [l1, r1], [l2, r2], [l3, r3]] = c;
    for i in 0..n {
        let (a, b, cc, d) = (x0[i], x1[i], x2[i], x3[i]);
        l[i] += l0 * a + l1 * b + l2 * cc + l3 * d;
        r[i] += r0 * a + r1 * b + r2 * cc + r3 * d;
    }
}

/// One channel with a constant coefficient.
pub fn add1(l: &mut [f32], r: &mut [f32], x: &[f32], c: Coef) {
    let n = l.len();
    let (r, x) = (&mut r[..n], &x[..n]);
    let [cl, cr] = c;
    for i in 0..n {
        l[i] += cl * x[i];
        r[i] += cr * x[i];
    }
}

/// One channel whose coefficient moves linearly from `from` to `to` across the block:
/// sample i uses `from + (to − from)·ramp[i]`, with `ramp[i] = (i+1)/n`, so the last
/// sample lands on `to` and the next block continues flat from there (no zipper noise).
pub fn add_ramped(l: &mut [f32], r: &mut [f32], x: &[f32], from: Coef, to: Coef, ramp: &[f32]) {
    let n = l.len();
    let (r, x, ramp) = (&mut r[..n], &x[..n], &ramp[..n]);
    let (dl, dr) = (to[0] - from[0], to[1] - from[1]);
    for i in 0..n {
        let g = ramp[i];
        l[i] += (from[0] + dl * g) * x[i];
        r[i] += (from[1] + dr * g) * x[i];
    }
}

/// Planar stereo -> interleaved L R L R.
pub fn interleave(l: &[f32], r: &[f32], out: &mut [f32]) {
    for ((o, a), b) in out.chunks_exact_mut(2).zip(l).zip(r) {
        o[0] = *a;
        o[1] = *b;
    }
}

/// Interleaved `frame` (`channels` per sample frame) -> planar `out`, channel c at
/// `c·n..(c+1)·n`. Done once per tick and shared by every mix. Row-major: the source is
/// read sequentially and each plane is written sequentially; reading channel-major
/// instead strides through the whole frame once per channel (measured slower).
pub fn deinterleave(frame: &[f32], channels: usize, out: &mut [f32]) {
    let channels = channels.max(1);
    let n = out.len() / channels;
    for (i, row) in frame.chunks_exact(channels).take(n).enumerate() {
        for (plane, &v) in out.chunks_exact_mut(n).zip(row) {
            plane[i] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add4_equals_four_add1() {
        let x: Vec<Vec<f32>> = (0..4)
            .map(|k| (0..37).map(|i| (i * (k + 1)) as f32 * 0.01).collect())
            .collect();
        let c = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]];
        let (mut l, mut r) = (vec![1.0; 37], vec![2.0; 37]);
        add4(&mut l, &mut r, [&x[0], &x[1], &x[2], &x[3]], c);
        let (mut l1, mut r1) = (vec![1.0; 37], vec![2.0; 37]);
        for k in 0..4 {
            add1(&mut l1, &mut r1, &x[k], c[k]);
        }
        for i in 0..37 {
            assert!((l[i] - l1[i]).abs() < 1e-5 && (r[i] - r1[i]).abs() < 1e-5);
        }
    }

    #[test]
    fn ramp_goes_from_start_to_target() {
        let n = 8;
        let ramp: Vec<f32> = (1..=n).map(|i| i as f32 / n as f32).collect();
        let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
        add_ramped(&mut l, &mut r, &[1.0; 8], [0.0, 1.0], [1.0, 0.0], &ramp);
        assert_eq!(l[0], 0.125);
        assert_eq!(l[n - 1], 1.0);
        assert_eq!(r[n - 1], 0.0);
    }

    #[test]
    fn deinterleave_then_interleave_round_trips() {
        let frame: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let mut planar = vec![0.0; 12];
        deinterleave(&frame, 3, &mut planar);
        assert_eq!(planar[..4], [0.0, 3.0, 6.0, 9.0]);
        assert_eq!(planar[8..], [2.0, 5.0, 8.0, 11.0]);
        let mut stereo = vec![0.0; 8];
        interleave(&planar[..4], &planar[4..8], &mut stereo);
        assert_eq!(stereo, [0.0, 1.0, 3.0, 4.0, 6.0, 7.0, 9.0, 10.0]);
    }
}
