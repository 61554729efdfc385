//! What each listening page reports of its link: the latency it shows the musician and its
//! packet loss. Checked here, kept per client by the [`super::Hub`] (not persisted: it is
//! about now), shown to engineers in `clients` and on `/metrics`
//! (`monmix_client_latency_ms`, `monmix_client_loss_pct`).
//!
//! The figure is the page's own estimate (protocol/websocket.md, `listen_stats`): the
//! server cannot see a phone's jitter buffer or its audio output.

use std::time::{Duration, Instant};

use crate::control::protocol::{ErrorCode, WireError};

/// A page reports every few seconds; one report per second per session at most.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// A report older than this is not shown (the page stopped reporting: a stale figure
/// would look live).
pub const FRESH_FOR: Duration = Duration::from_secs(15);
/// Above this a figure is not a latency but a bug or a stalled page.
pub const MAX_LATENCY_MS: f64 = 10_000.0;

/// One page's last report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkReport {
    pub latency_ms: f32,
    pub loss_pct: f32,
    pub at: Instant,
}

impl LinkReport {
    /// Checks the figures: finite, latency in 0..=10,000 ms, loss in 0..=100 %.
    pub fn new(latency_ms: f64, loss_pct: f64, at: Instant) -> Result<LinkReport, WireError> {
        let bad =
            |m: String| Err(WireError::new(ErrorCode::OutOfRange, m).with_ref("listen_stats"));
        if !latency_ms.is_finite() || !(0.0..=MAX_LATENCY_MS).contains(&latency_ms) {
            return bad(format!(
                "latency_ms must be 0..={MAX_LATENCY_MS}, got {latency_ms}"
            ));
        }
        if !loss_pct.is_finite() || !(0.0..=100.0).contains(&loss_pct) {
            return bad(format!("loss_pct must be 0..=100, got {loss_pct}"));
        }
        Ok(LinkReport {
            latency_ms: latency_ms as f32,
            loss_pct: loss_pct as f32,
            at,
        })
    }

    pub fn is_fresh(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.at) <= FRESH_FOR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_in_range_pass_and_others_are_refused() {
        let now = Instant::now();
        let r = LinkReport::new(38.5, 0.2, now).expect("in range");
        assert_eq!((r.latency_ms, r.loss_pct), (38.5, 0.2));
        for (lat, loss) in [
            (-1.0, 0.0),
            (10_001.0, 0.0),
            (f64::NAN, 0.0),
            (f64::INFINITY, 0.0),
            (20.0, -0.1),
            (20.0, 100.5),
            (20.0, f64::NAN),
        ] {
            let e = LinkReport::new(lat, loss, now).expect_err("refused");
            assert_eq!(e.code, ErrorCode::OutOfRange);
            assert_eq!(e.ref_type.as_deref(), Some("listen_stats"));
        }
        assert!(r.is_fresh(now + FRESH_FOR));
        assert!(!r.is_fresh(now + FRESH_FOR + Duration::from_millis(1)));
    }
}
