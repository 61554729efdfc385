//! Latency by click: onsets on a source and on what monmix made of it, recorded by one
//! client in one cycle, matched pairwise. Shared by the PipeWire and JACK tests.

/// Onsets in `x`: the first sample above `threshold` after `quiet` samples below it. A
/// sound already under way when the recording starts is not one (both sides would count
/// their cut-off starts at sample 0: a delay of 0).
pub fn onsets(x: &[f32], threshold: f32, quiet: usize) -> Vec<usize> {
    let mut v = Vec::new();
    let mut below = 0;
    for (i, s) in x.iter().enumerate() {
        if s.abs() > threshold {
            if below >= quiet {
                v.push(i);
            }
            below = 0;
        } else {
            below += 1;
        }
    }
    v
}

/// (source onset, delay) for each source onset followed by an output onset within
/// `max` samples, in time order.
pub fn matched(src: &[usize], out: &[usize], max: usize) -> Vec<(usize, usize)> {
    src.iter()
        .filter_map(|&t| {
            out.iter()
                .find(|&&u| u >= t && u - t < max)
                .map(|&u| (t, u - t))
        })
        .collect()
}

/// Prints the `# bench` line of `name` (median, min, max in ms at 48 kHz, the goal of two
/// frames + 2 ms, the load average) and returns the delays sorted.
pub fn report(name: &str, frame_ms: &str, timed: &[(usize, usize)], load: &str) -> Vec<usize> {
    let mut delays: Vec<usize> = timed.iter().map(|&(_, d)| d).collect();
    delays.sort_unstable();
    let ms = |s: usize| s as f64 / 48.0;
    let frame: f64 = frame_ms.parse().unwrap_or(0.0);
    if let (Some(lo), Some(hi)) = (delays.first(), delays.last()) {
        eprintln!(
            "# bench {name} frame_ms {frame_ms} median_ms {:.2} min_ms {:.2} max_ms {:.2} clicks {} goal_ms {:.1} loadavg {}",
            ms(delays[delays.len() / 2]),
            ms(*lo),
            ms(*hi),
            delays.len(),
            2.0 * frame + 2.0,
            load.split_whitespace().next().unwrap_or("?"),
        );
    }
    delays
}
