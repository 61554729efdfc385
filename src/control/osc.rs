//! OSC control surfaces (TouchOSC, Open Stage Control, fader boxes) over UDP.
//! The protocol is in `protocol/osc.md`.
//!
//! - [`core`]: parsing, dispatch to the [`crate::state::Store`], leases, feedback; pure
//!   and driven by an explicit clock, so it is tested without sockets.
//! - fader position <-> gain is [`crate::taper`] (shared with the page), the source
//!   allow-list is [`crate::allow_list`] (shared with config validation).
//! - [`net`]: the UDP socket task.

pub mod core;
pub mod net;

pub use self::core::{
    origin_of, parse_address, DropReason, OscCore, OscSettings, OscStats, Out, Route, Target,
};
pub use self::net::{OscError, OscService};
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
