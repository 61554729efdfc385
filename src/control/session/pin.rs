//! The PIN failure limiter ([`PinBook`]): wrong admin PINs per minute, per source
//! address and from all addresses together.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::Hub;

impl Hub {
    /// True if `ip` may try a PIN now (see [`PinBook`]).
    pub(super) fn pin_allowed(&self, ip: IpAddr, now: Instant) -> bool {
        let Ok(mut b) = self.pin_failures.lock() else {
            return false;
        };
        let l = &self.limits;
        b.allows(ip, now, l.pin_tries_per_min, l.pin_tries_per_min_total)
    }

    pub(super) fn pin_failed(&self, ip: IpAddr, now: Instant) {
        if let Ok(mut b) = self.pin_failures.lock() {
            b.failed(ip, now);
        }
    }
}

/// Wrong PINs of the last minute, per source and in total. Sources whose failures are
/// older than a minute are forgotten, so the book stays as small as the attack.
#[derive(Default)]
pub(super) struct PinBook {
    by_source: HashMap<IpAddr, VecDeque<Instant>>,
    all: VecDeque<Instant>,
}

impl PinBook {
    fn allows(&mut self, ip: IpAddr, now: Instant, per_source: usize, total: usize) -> bool {
        self.expire(now);
        self.all.len() < total
            && self
                .by_source
                .get(&pin_source(ip))
                .is_none_or(|q| q.len() < per_source)
    }

    fn failed(&mut self, ip: IpAddr, now: Instant) {
        self.by_source
            .entry(pin_source(ip))
            .or_default()
            .push_back(now);
        self.all.push_back(now);
    }

    fn expire(&mut self, now: Instant) {
        let old = |t: &Instant| now.duration_since(*t) > Duration::from_secs(60);
        while self.all.front().is_some_and(old) {
            self.all.pop_front();
        }
        self.by_source.retain(|_, q| {
            while q.front().is_some_and(old) {
                q.pop_front();
            }
            !q.is_empty()
        });
    }
}

/// The unit PIN tries are counted by: an IPv4 address, or an IPv6 /64 (one device can
/// take any address of its /64).
fn pin_source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(std::net::Ipv6Addr::from(seg))
            }
        },
    }
}

#[cfg(test)]
mod pin_tests {
    use super::*;

    #[test]
    fn per_source_total_and_ipv6_prefix() {
        let t0 = Instant::now();
        let mut b = PinBook::default();
        let v4 = |n: u8| IpAddr::from([10, 0, 0, n]);
        for _ in 0..5 {
            assert!(b.allows(v4(1), t0, 5, 30));
            b.failed(v4(1), t0);
        }
        assert!(!b.allows(v4(1), t0, 5, 30), "6th try from one address");
        assert!(b.allows(v4(2), t0, 5, 30), "another address may try");
        // Every address of one IPv6 /64 is one source.
        for n in 0..5u16 {
            let ip = IpAddr::from([0xfd00, 0, 0, 1, n, 7, 7, n]);
            assert!(b.allows(ip, t0, 5, 30));
            b.failed(ip, t0);
        }
        assert!(!b.allows(IpAddr::from([0xfd00, 0, 0, 1, 9, 9, 9, 9]), t0, 5, 30));
        assert!(b.allows(IpAddr::from([0xfd00, 0, 0, 2, 9, 9, 9, 9]), t0, 5, 30));
        // Many sources together: locked at the total.
        for n in 3..=22u8 {
            b.failed(v4(n), t0);
        }
        assert_eq!(b.all.len(), 30);
        assert!(!b.allows(v4(200), t0, 5, 30), "total reached");
        // A minute later everything is forgotten, and the book is empty again.
        let later = t0 + Duration::from_secs(61);
        assert!(b.allows(v4(1), later, 5, 30));
        assert!(b.by_source.is_empty() && b.all.is_empty());
    }
}
