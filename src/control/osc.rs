//! OSC control surfaces (TouchOSC, Open Stage Control, fader boxes) over UDP.
//! The protocol is in `protocol/osc.md`.
//!
//! The protocol engine is pure and driven by an explicit clock, so it is tested without
//! sockets:
//! - [`core`]: [`OscCore`], dispatch of datagrams to the [`crate::state::Store`], store
//!   events and meter ticks to feedback; [`OscSettings`], [`Out`], [`origin_of`].
//! - [`datagram`]: size and bundle-nesting limits, checked before decoding.
//! - [`address`]: the address grammar ([`parse_address`], [`Route`], [`Target`], the
//!   TouchOSC aliases).
//! - [`args`]: argument coercion (floats, ints, bools, strings) to store ops.
//! - `roster`: `{m}` (position, client id or name) -> client id.
//! - `lease`: `/subscribe` leases and the subscriber table.
//! - `feedback`: outgoing messages (query replies, dumps, event and meter feedback).
//! - [`stats`]: [`OscStats`], [`DropReason`], the Prometheus lines.
//!
//! Around it: [`net`] is the UDP socket task; fader position <-> gain is [`crate::taper`]
//! (shared with the page), the source allow-list is [`crate::allow_list`] (shared with
//! config validation).

pub mod address;
pub mod args;
pub mod core;
pub mod datagram;
mod feedback;
mod lease;
pub mod net;
mod roster;
pub mod stats;

pub use self::address::{parse_address, Route, Target};
pub use self::core::{origin_of, OscCore, OscSettings, Out};
pub use self::net::{OscError, OscService};
pub use self::stats::{DropReason, OscStats};
pub use crate::allow_list::AllowList;
use crate::allow_list::BadNetwork;

use std::time::Duration;

impl OscSettings {
    /// Settings from the config file's `[osc]` and `[server]` sections.
    pub fn from_config(
        cfg: &crate::config::Config,
        channels: usize,
    ) -> Result<OscSettings, BadNetwork> {
        Ok(OscSettings {
            server_name: cfg.server.name.clone(),
            channels,
            lease: Duration::from_secs_f64(cfg.osc.lease_secs),
            reply_port: (cfg.osc.reply_port != 0).then_some(cfg.osc.reply_port),
            touchosc_mix: cfg.osc.touchosc_mix.clone(),
            allow: AllowList::parse(&cfg.osc.allow)?,
            max_subscribers: cfg.osc.max_subscribers,
            performers: cfg
                .osc
                .performer
                .iter()
                .map(|p| {
                    Ok((
                        AllowList::parse(std::slice::from_ref(&p.source))?,
                        p.mix.clone(),
                    ))
                })
                .collect::<Result<_, BadNetwork>>()?,
        })
    }
}
