//! Counters of the streaming side, readable from anywhere without locks, and their
//! Prometheus rendering (`monmix_stream_*`), which the HTTP layer appends to `/metrics`.
//!
//! Why atomics and a fixed log-bucket histogram: the shards record every frame, and
//! they must not allocate or lock on that path. A bucket is a power of two split in four
//! (≈19 % wide), enough to tell a 40 µs encode from a 400 µs one and to see p99 latency
//! move, at 256 × 8 bytes per histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::metrics::{Kind, PromText};

/// Sub-buckets per power of two (2 bits of mantissa).
const SUB: usize = 4;
const BUCKETS: usize = 64 * SUB;

/// Lock-free histogram of nanosecond values in ~19 % wide log buckets.
pub struct Histogram {
    buckets: Box<[AtomicU64; BUCKETS]>,
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count())
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .finish()
    }
}

fn bucket_of(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros() as usize; // >= 2
    let mantissa = ((ns >> (exp - 2)) & 0b11) as usize;
    (exp * SUB + mantissa).min(BUCKETS - 1)
}

/// Upper bound (exclusive) of a bucket, in ns.
fn bucket_upper(b: usize) -> u64 {
    if b < SUB {
        return b as u64 + 1;
    }
    let exp = b / SUB;
    let mantissa = (b % SUB) as u64;
    let base = 1u64 << exp;
    let step = base >> 2;
    base.saturating_add(step.saturating_mul(mantissa + 1))
}

impl Histogram {
    /// Records one value. Allocation-free, wait-free.
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(ns)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Mean of all recorded values.
    pub fn mean(&self) -> Duration {
        let n = self.count();
        if n == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.sum_ns.load(Ordering::Relaxed) / n)
    }

    /// The `q` quantile (0..=1), as the upper bound of its bucket (over-estimates by at most
    /// one bucket width). Zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(bucket_upper(b));
            }
        }
        Duration::from_nanos(bucket_upper(BUCKETS - 1))
    }

    /// Forgets everything (benchmarks measure a steady-state window).
    pub fn reset(&self) {
        for b in self.buckets.iter() {
            b.store(0, Ordering::Relaxed);
        }
        self.count.store(0, Ordering::Relaxed);
        self.sum_ns.store(0, Ordering::Relaxed);
    }
}

/// Everything the streaming side counts.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Listeners (WebRTC sessions) currently open.
    pub listeners: AtomicU64,
    /// Mixes currently encoded (= encoders = engine taps held).
    pub active_mixes: AtomicU64,
    /// Sessions opened since start.
    pub sessions_opened: AtomicU64,
    /// Sessions refused (bad offer, too many listeners, transport failure).
    pub sessions_rejected: AtomicU64,
    /// RTP packets handed to listeners' transports.
    pub packets_sent: AtomicU64,
    /// Payload bytes handed to listeners' transports.
    pub bytes_sent: AtomicU64,
    /// Packets a listener's transport could not take at once (its queue was full): skipped
    /// for that listener only.
    pub packets_dropped: AtomicU64,
    /// Opus packets produced (one per mix per frame, however many listen).
    pub frames_encoded: AtomicU64,
    /// Mix frames not encoded because the encoder fell behind (its own drops plus frames
    /// the engine could not push into a full tap).
    pub frames_dropped: AtomicU64,
    /// Opus encode errors (the frame is skipped).
    pub encode_errors: AtomicU64,
    /// Time to encode one frame.
    pub encode_time: Histogram,
    /// Shard wake-up after an engine tick → the tick's datagrams handed to the kernel.
    pub internal_latency: Histogram,
    /// Datagrams read from the shards' sockets.
    pub datagrams_received: AtomicU64,
    /// Datagrams no listener claimed (unknown address, STUN for an unknown ufrag): dropped.
    pub datagrams_unknown: AtomicU64,
    /// Datagrams a listener's stack refused (malformed, failed integrity or DTLS).
    pub datagrams_bad: AtomicU64,
    /// Datagrams sent.
    pub datagrams_sent: AtomicU64,
    /// Datagrams the kernel did not take (socket buffer full): dropped.
    pub datagrams_send_failed: AtomicU64,
    /// `sendmmsg` calls.
    pub send_syscalls: AtomicU64,
    /// Listeners dropped because their stack closed (DTLS alert, failure).
    pub peers_closed: AtomicU64,
    /// Listeners dropped because ICE/DTLS did not complete in time.
    pub peers_connect_timeout: AtomicU64,
    /// Connected listeners dropped because nothing came from them for too long.
    pub peers_vanished: AtomicU64,
}

impl StreamStats {
    pub(crate) fn add(a: &AtomicU64, n: u64) {
        a.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(a: &AtomicU64, n: u64) {
        a.fetch_sub(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }

    /// Prometheus text exposition lines, every name prefixed `monmix_stream_`.
    pub fn render_prometheus(&self, p: &mut PromText) {
        let mut line = |name: &str, kind: Kind, help: &str, v: u64| {
            p.single(&format!("stream_{name}"), kind, help, v);
        };
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        line(
            "listeners",
            Kind::Gauge,
            "Open WebRTC listener sessions.",
            g(&self.listeners),
        );
        line(
            "active_mixes",
            Kind::Gauge,
            "Mixes being Opus-encoded (one encoder each).",
            g(&self.active_mixes),
        );
        line(
            "sessions_opened_total",
            Kind::Counter,
            "WHEP sessions opened.",
            g(&self.sessions_opened),
        );
        line(
            "sessions_rejected_total",
            Kind::Counter,
            "WHEP sessions refused.",
            g(&self.sessions_rejected),
        );
        line(
            "packets_sent_total",
            Kind::Counter,
            "RTP packets handed to listener transports.",
            g(&self.packets_sent),
        );
        line(
            "bytes_sent_total",
            Kind::Counter,
            "Opus payload bytes handed to listener transports.",
            g(&self.bytes_sent),
        );
        line(
            "packets_dropped_total",
            Kind::Counter,
            "Packets skipped for a listener whose transport queue was full.",
            g(&self.packets_dropped),
        );
        line(
            "frames_encoded_total",
            Kind::Counter,
            "Opus frames encoded (once per mix).",
            g(&self.frames_encoded),
        );
        line(
            "frames_dropped_total",
            Kind::Counter,
            "Mix frames dropped because an encoder fell behind.",
            g(&self.frames_dropped),
        );
        line(
            "encode_errors_total",
            Kind::Counter,
            "Opus encoder errors.",
            g(&self.encode_errors),
        );
        for (name, a, help) in [
            (
                "datagrams_received_total",
                &self.datagrams_received,
                "UDP datagrams read by the shards.",
            ),
            (
                "datagrams_unknown_total",
                &self.datagrams_unknown,
                "Datagrams no listener claimed (dropped).",
            ),
            (
                "datagrams_bad_total",
                &self.datagrams_bad,
                "Datagrams a listener's WebRTC stack refused.",
            ),
            (
                "datagrams_sent_total",
                &self.datagrams_sent,
                "UDP datagrams sent.",
            ),
            (
                "datagrams_send_failed_total",
                &self.datagrams_send_failed,
                "Datagrams the kernel did not take (dropped).",
            ),
            (
                "send_syscalls_total",
                &self.send_syscalls,
                "sendmmsg calls (one per shard per tick in the steady state).",
            ),
            (
                "peers_closed_total",
                &self.peers_closed,
                "Listeners whose WebRTC stack closed.",
            ),
            (
                "peers_connect_timeout_total",
                &self.peers_connect_timeout,
                "Listeners that never completed ICE/DTLS.",
            ),
            (
                "peers_vanished_total",
                &self.peers_vanished,
                "Connected listeners that went silent.",
            ),
        ] {
            line(name, Kind::Counter, help, g(a));
        }
        for (name, h, help) in [
            (
                "encode_seconds",
                &self.encode_time,
                "Opus encode time per frame.",
            ),
            (
                "internal_latency_seconds",
                &self.internal_latency,
                "Shard wake-up after an engine tick to the tick's datagrams handed to the kernel.",
            ),
        ] {
            let q = [0.5, 0.99].map(|q| (q, h.quantile(q).as_secs_f64()));
            let sum = h.mean().as_secs_f64() * h.count() as f64;
            p.summary(&format!("stream_{name}"), help, &q, sum, h.count());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for ns in [1u64, 3, 4, 5, 7, 8, 100, 1000, 40_000, 1 << 40] {
            let b = bucket_of(ns);
            assert!(b >= last);
            last = b;
            let up = bucket_upper(b);
            assert!(up > ns, "{ns} -> bucket {b} upper {up}");
            assert!(up as f64 <= ns as f64 * 1.26 + 1.0, "{ns} -> {up}");
        }
    }

    #[test]
    fn quantiles() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), Duration::ZERO);
        for i in 1..=100u64 {
            h.record(Duration::from_micros(i));
        }
        let p50 = h.quantile(0.5).as_micros();
        let p99 = h.quantile(0.99).as_micros();
        assert!((50..=63).contains(&p50), "{p50}");
        assert!((99..=125).contains(&p99), "{p99}");
        assert_eq!(h.count(), 100);
    }

    #[test]
    fn renders_prometheus() {
        let s = StreamStats::default();
        StreamStats::add(&s.listeners, 3);
        s.encode_time.record(Duration::from_micros(40));
        let mut p = PromText::new();
        s.render_prometheus(&mut p);
        let text = p.finish();
        assert!(text.contains("monmix_stream_listeners 3\n"));
        assert!(text.contains("monmix_stream_encode_seconds{quantile=\"0.99\"}"));
        assert!(text
            .lines()
            .all(|l| l.starts_with('#') || l.starts_with("monmix_stream_")));
    }
}
