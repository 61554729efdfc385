//! OSC counters: why a datagram or message was dropped ([`DropReason`]), the [`OscStats`]
//! the socket task and the core bump, and their `monmix_osc_*` Prometheus lines.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::control::protocol::ErrorCode;
use crate::state::StoreError;

/// Why a datagram or message was dropped; each has a counter (`monmix_osc_dropped_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Source address not in `osc.allow`.
    Denied,
    /// Larger than [`MAX_DATAGRAM`](super::datagram::MAX_DATAGRAM).
    Oversize,
    /// Bundles nested deeper than [`MAX_BUNDLE_DEPTH`](super::datagram::MAX_BUNDLE_DEPTH).
    Nesting,
    /// Not decodable as OSC.
    Malformed,
    /// No such address in the address space.
    UnknownAddress,
    /// `{m}` names no client.
    UnknownMix,
    /// Wrong argument count or type.
    BadType,
    /// NaN, infinity, or outside the parameter's range; unknown channel or preset.
    OutOfRange,
    /// `/subscribe` while `osc.max_subscribers` surfaces are subscribed.
    SubscribersFull,
    /// Any other refusal of the store.
    Rejected,
    /// A write to another mix from a source bound to one performer's mix (`[[osc.performer]]`).
    Forbidden,
}

impl DropReason {
    pub const ALL: [DropReason; 11] = [
        DropReason::Denied,
        DropReason::Oversize,
        DropReason::Nesting,
        DropReason::Malformed,
        DropReason::UnknownAddress,
        DropReason::UnknownMix,
        DropReason::BadType,
        DropReason::OutOfRange,
        DropReason::SubscribersFull,
        DropReason::Rejected,
        DropReason::Forbidden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Denied => "denied",
            DropReason::Oversize => "oversize",
            DropReason::Nesting => "nesting",
            DropReason::Malformed => "malformed",
            DropReason::UnknownAddress => "unknown_address",
            DropReason::UnknownMix => "unknown_mix",
            DropReason::BadType => "bad_type",
            DropReason::OutOfRange => "out_of_range",
            DropReason::SubscribersFull => "subscribers_full",
            DropReason::Rejected => "rejected",
            DropReason::Forbidden => "forbidden",
        }
    }

    /// A refused store command, through the one store -> wire mapping.
    pub(super) fn of_store(e: &StoreError) -> DropReason {
        match ErrorCode::from(e) {
            ErrorCode::UnknownClient => DropReason::UnknownMix,
            ErrorCode::UnknownChannel | ErrorCode::OutOfRange => DropReason::OutOfRange,
            _ => DropReason::Rejected,
        }
    }
}

/// Counters, read by `/metrics`.
#[derive(Debug, Default)]
pub struct OscStats {
    pub datagrams: AtomicU64,
    pub messages: AtomicU64,
    pub applied: AtomicU64,
    pub queries: AtomicU64,
    pub sent: AtomicU64,
    pub send_errors: AtomicU64,
    pub feedback: AtomicU64,
    pub events_lagged: AtomicU64,
    pub subscribers: AtomicU64,
    pub(super) dropped: [AtomicU64; 11],
}

impl OscStats {
    pub fn dropped(&self, why: DropReason) -> u64 {
        self.dropped[why as usize].load(Ordering::Relaxed)
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|a| a.load(Ordering::Relaxed)).sum()
    }

    pub(super) fn bump(a: &AtomicU64) {
        a.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the `monmix_osc_*` metrics in the Prometheus text format.
    pub fn render_prometheus(&self, p: &mut crate::metrics::PromText) {
        use crate::metrics::Kind;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counters: [(&str, &str, u64); 8] = [
            (
                "osc_datagrams_total",
                "OSC datagrams received.",
                r(&self.datagrams),
            ),
            (
                "osc_messages_total",
                "OSC messages decoded (bundle contents counted one by one).",
                r(&self.messages),
            ),
            (
                "osc_applied_total",
                "OSC changes applied to the state.",
                r(&self.applied),
            ),
            (
                "osc_queries_total",
                "OSC queries and dumps answered.",
                r(&self.queries),
            ),
            (
                "osc_sent_total",
                "OSC datagrams sent (replies, feedback, meters).",
                r(&self.sent),
            ),
            (
                "osc_send_errors_total",
                "OSC datagrams that could not be sent.",
                r(&self.send_errors),
            ),
            (
                "osc_feedback_total",
                "OSC feedback messages queued to subscribers.",
                r(&self.feedback),
            ),
            (
                "osc_events_lagged_total",
                "Store events the OSC service missed (it fell behind).",
                r(&self.events_lagged),
            ),
        ];
        for (name, help, v) in counters {
            p.single(name, Kind::Counter, help, v);
        }
        p.single(
            "osc_subscribers",
            Kind::Gauge,
            "Surfaces with a live /subscribe lease.",
            r(&self.subscribers),
        );
        p.family(
            "osc_dropped_total",
            Kind::Counter,
            "OSC datagrams or messages dropped, by reason.",
        );
        for d in DropReason::ALL {
            p.sample(
                "osc_dropped_total",
                &[("reason", d.as_str())],
                self.dropped(d),
            );
        }
    }
}
