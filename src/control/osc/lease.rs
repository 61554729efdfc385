//! `/subscribe` leases: the subscriber table (who gets feedback, for which mix, until when),
//! renewal, expiry, and the `osc_subscribers` gauge that mirrors it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::stats::{DropReason, OscStats};

/// One subscribed surface.
pub(super) struct Subscriber {
    pub(super) reply_to: SocketAddr,
    pub(super) origin: u64,
    pub(super) until: Instant,
    /// Client id of the one mix it follows; None = every mix.
    pub(super) mix: Option<String>,
}

/// The subscriber table, by source address. Every change is published to
/// [`OscStats::subscribers`].
pub(super) struct Leases {
    subs: HashMap<SocketAddr, Subscriber>,
    stats: Arc<OscStats>,
}

impl Leases {
    pub(super) fn new(stats: Arc<OscStats>) -> Leases {
        Leases {
            subs: HashMap::new(),
            stats,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.subs.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Subscriber> {
        self.subs.values()
    }

    fn publish(&self) {
        self.stats
            .subscribers
            .store(self.subs.len() as u64, Ordering::Relaxed);
    }

    /// Takes or renews the lease of `from` (until `sub.until`, following `sub.mix`).
    /// `Ok(true)` when the subscription is new or now follows another mix; a new source
    /// while `max` surfaces are subscribed is refused.
    pub(super) fn renew(
        &mut self,
        from: SocketAddr,
        sub: Subscriber,
        max: usize,
    ) -> Result<bool, DropReason> {
        let is_new = match self.subs.get_mut(&from) {
            Some(s) if s.mix == sub.mix => {
                s.until = sub.until;
                false
            }
            Some(s) => {
                s.until = sub.until;
                s.mix = sub.mix;
                true
            }
            None => {
                if self.subs.len() >= max {
                    return Err(DropReason::SubscribersFull);
                }
                self.subs.insert(from, sub);
                true
            }
        };
        self.publish();
        Ok(is_new)
    }

    /// Ends the lease of `from`, if any.
    pub(super) fn remove(&mut self, from: SocketAddr) {
        self.subs.remove(&from);
        self.publish();
    }

    /// Drops subscriptions whose lease ran out.
    pub(super) fn expire(&mut self, now: Instant) {
        let before = self.subs.len();
        self.subs.retain(|_, s| s.until > now);
        if self.subs.len() != before {
            self.publish();
        }
    }

    /// Where feedback of a change to mix `client_id` goes: every subscriber following that
    /// mix, except the surface (`origin`) that caused it.
    pub(super) fn feedback_targets(&self, origin: u64, client_id: &str) -> Vec<SocketAddr> {
        self.subs
            .values()
            .filter(|s| s.origin != origin && s.mix.as_ref().is_none_or(|m| *m == client_id))
            .map(|s| s.reply_to)
            .collect()
    }
}
