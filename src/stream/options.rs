//! Settings of the streaming service and the UDP addresses it streams from.

use std::net::{IpAddr, SocketAddr};

use super::{EncoderConfig, Lifecycle};

/// Settings of the streaming service; every field has a working default.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// Opus settings. `frame_len` is taken from the engine.
    pub encoder: EncoderConfig,
    /// Shard threads (default: number of cores).
    pub shards: usize,
    /// Listeners across all mixes (default 256); more get 503.
    pub max_listeners: usize,
    /// Connect and vanish timeouts of a listener.
    pub lifecycle: Lifecycle,
    /// Local UDP addresses (port 0 = ephemeral), each shard binds one socket per address;
    /// they are the host candidates, so phones must reach them. See [`udp_addrs_for`].
    pub udp_addrs: Vec<SocketAddr>,
    /// Tests and benchmarks only: the shards get no thread of their own; the caller drives
    /// them with [`StreamService::run_pass`] (to measure or count what one pass does).
    pub manual: bool,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            encoder: EncoderConfig::default(),
            shards: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_listeners: 256,
            lifecycle: Lifecycle::default(),
            udp_addrs: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            manual: false,
        }
    }
}

/// The UDP addresses for a server whose HTTP side listens on `http_bind`:
/// `stream.public_ip` when set (the address phones reach), else the HTTP address's IP; a
/// wildcard (`0.0.0.0`/`::`) becomes every interface address of that family, loopback and
/// link-local excluded (loopback if there is nothing else). Ports are ephemeral.
pub fn udp_addrs_for(http_bind: SocketAddr, public_ip: Option<IpAddr>) -> Vec<SocketAddr> {
    let ip = public_ip.unwrap_or(http_bind.ip());
    if !ip.is_unspecified() {
        return vec![SocketAddr::new(ip, 0)];
    }
    let v4 = ip.is_ipv4();
    let mut out: Vec<SocketAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|a| a.is_ipv4() == v4 && !a.is_loopback())
        .filter(|a| match a {
            IpAddr::V4(a) => !a.is_link_local(),
            IpAddr::V6(a) => (a.segments()[0] & 0xffc0) != 0xfe80,
        })
        .map(|a| SocketAddr::new(a, 0))
        .collect();
    out.dedup();
    if out.is_empty() {
        let lo = if v4 {
            IpAddr::from([127, 0, 0, 1])
        } else {
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
        };
        out.push(SocketAddr::new(lo, 0));
    }
    out
}
