//! mDNS / DNS-SD: the server announces itself so phones and surfaces find it without an
//! address; `monmix discover` lists servers on the LAN.
//!
//! Three services share one instance name (the server name) and the host `monmix.local.`:
//! `_monmix._tcp` (TXT: version, name, ws, whep, osc, channels), `_http._tcp` (the page)
//! and `_osc._udp` (for control surfaces). mdns-sd watches the interfaces and re-announces
//! when addresses come and go; [`Advertiser::stop`] sends the goodbye packets.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use tracing::{info, warn};

pub const SERVICE_MONMIX: &str = "_monmix._tcp.local.";
pub const SERVICE_HTTP: &str = "_http._tcp.local.";
pub const SERVICE_OSC: &str = "_osc._udp.local.";

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("mDNS: {0}")]
    Mdns(#[from] mdns_sd::Error),
    #[error("mDNS: {0}")]
    Invalid(String),
    /// HTTP listens on a loopback address: nobody on the LAN could connect, so nothing is
    /// announced (and no multicast socket is opened on any interface).
    #[error("mDNS off: the HTTP listener {0} is on loopback only")]
    LoopbackOnly(SocketAddr),
}

/// What to announce.
#[derive(Debug, Clone)]
pub struct Advert {
    /// Instance name (the server name).
    pub name: String,
    /// Host label, announced as `<host_name>.local.`.
    pub host_name: String,
    /// The bound HTTP listener (page, /ws, /whep).
    pub http: SocketAddr,
    /// The bound OSC listener, if OSC is on.
    pub osc: Option<SocketAddr>,
    pub channels: usize,
    /// Interface allow-list: names (`eth0`) or addresses; empty = every interface.
    pub interfaces: Vec<String>,
}

impl Advert {
    /// The TXT record of `_monmix._tcp`.
    pub fn txt(&self) -> Vec<(String, String)> {
        let mut t = vec![
            ("version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            ("name".to_string(), self.name.clone()),
            ("ws".to_string(), "/ws".to_string()),
            ("whep".to_string(), "/whep".to_string()),
            ("channels".to_string(), self.channels.to_string()),
        ];
        if let Some(o) = self.osc {
            t.push(("osc".to_string(), o.port().to_string()));
        }
        t
    }
}

fn if_kind(s: &str) -> IfKind {
    match s.parse::<IpAddr>() {
        Ok(ip) => IfKind::Addr(ip),
        Err(_) => IfKind::Name(s.to_owned()),
    }
}

/// Is `ip` on an interface the allow-list names (by name or address)?
fn ip_allowed(ip: IpAddr, allow: &[String]) -> bool {
    if allow.is_empty() {
        return true;
    }
    if allow.iter().any(|a| a.parse::<IpAddr>().ok() == Some(ip)) {
        return true;
    }
    if_addrs::get_if_addrs()
        .map(|list| list.iter().any(|i| i.ip() == ip && allow.contains(&i.name)))
        .unwrap_or(false)
}

/// A running announcement; [`Advertiser::stop`] withdraws it.
pub struct Advertiser {
    daemon: ServiceDaemon,
    fullnames: Vec<String>,
}

impl Advertiser {
    /// Starts announcing. When `http` is bound to one address only that address is
    /// announced (and only on its interface); otherwise every address of the allowed
    /// interfaces, kept up to date as interfaces change. A loopback `http` announces
    /// nothing ([`DiscoveryError::LoopbackOnly`]).
    pub fn start(ad: &Advert) -> Result<Advertiser, DiscoveryError> {
        if ad.http.ip().is_loopback() {
            return Err(DiscoveryError::LoopbackOnly(ad.http));
        }
        let specific = (!ad.http.ip().is_unspecified()).then(|| ad.http.ip());
        if let Some(ip) = specific {
            if !ip_allowed(ip, &ad.interfaces) {
                return Err(DiscoveryError::Invalid(format!(
                    "the HTTP address {ip} is not on an interface in mdns.interfaces; not announcing"
                )));
            }
        }
        let daemon = ServiceDaemon::new()?;
        let kinds: Vec<IfKind> = match specific {
            Some(ip) => vec![IfKind::Addr(ip)],
            None => ad.interfaces.iter().map(|s| if_kind(s)).collect(),
        };
        if !kinds.is_empty() {
            daemon.disable_interface(IfKind::All)?;
            daemon.enable_interface(kinds.clone())?;
        }
        let host = format!("{}.local.", ad.host_name);
        let mut infos = Vec::new();
        let txt = ad.txt();
        infos.push((SERVICE_MONMIX, ad.http.port(), txt));
        infos.push((
            SERVICE_HTTP,
            ad.http.port(),
            vec![("path".to_string(), "/".to_string())],
        ));
        if let Some(o) = ad.osc {
            infos.push((
                SERVICE_OSC,
                o.port(),
                vec![("name".to_string(), ad.name.clone())],
            ));
        }
        let mut fullnames = Vec::new();
        for (ty, port, props) in infos {
            let props: Vec<(&str, &str)> = props
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let mut info = match specific {
                Some(ip) => ServiceInfo::new(ty, &ad.name, &host, ip, port, &props[..])?,
                None => {
                    ServiceInfo::new(ty, &ad.name, &host, (), port, &props[..])?.enable_addr_auto()
                }
            };
            if !kinds.is_empty() {
                info.set_interfaces(kinds.clone());
            }
            fullnames.push(info.get_fullname().to_string());
            daemon.register(info)?;
        }
        info!(host = %host, services = ?fullnames, "mdns: announcing");
        Ok(Advertiser { daemon, fullnames })
    }

    pub fn fullnames(&self) -> &[String] {
        &self.fullnames
    }

    /// Withdraws every service (goodbye packets) and stops the daemon; waits up to
    /// `timeout` for it.
    pub async fn stop(self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut waits = Vec::new();
        for f in &self.fullnames {
            match self.daemon.unregister(f) {
                Ok(rx) => waits.push(rx),
                Err(e) => warn!("mdns: unregister {f}: {e}"),
            }
        }
        for rx in waits {
            if tokio::time::timeout_at(deadline, rx.recv_async())
                .await
                .is_err()
            {
                warn!("mdns: goodbye not confirmed in time");
            }
        }
        if let Ok(rx) = self.daemon.shutdown() {
            let _ = tokio::time::timeout_at(deadline, rx.recv_async()).await;
        }
        info!("mdns: withdrawn");
    }
}

/// A service instance seen on the network.
#[derive(Debug, Clone)]
pub struct Found {
    pub service_type: String,
    pub fullname: String,
    pub host: String,
    pub port: u16,
    pub addresses: Vec<IpAddr>,
    pub txt: BTreeMap<String, String>,
}

impl Found {
    /// `http://ADDR:PORT/` for every address (IPv4 first), then the host name.
    pub fn urls(&self) -> Vec<String> {
        let mut addrs = self.addresses.clone();
        addrs.sort_by_key(|a| (a.is_ipv6(), *a));
        let mut v: Vec<String> = addrs
            .iter()
            .map(|a| match a {
                IpAddr::V4(v4) => format!("http://{v4}:{}/", self.port),
                IpAddr::V6(v6) => format!("http://[{v6}]:{}/", self.port),
            })
            .collect();
        v.push(format!(
            "http://{}:{}/",
            self.host.trim_end_matches('.'),
            self.port
        ));
        v
    }
}

/// What a browse reports as it happens.
#[derive(Debug, Clone)]
pub enum Seen {
    Resolved(Found),
    Removed {
        service_type: String,
        fullname: String,
    },
}

/// Browses `types` for `timeout`, calling `on` for every resolution and removal; returns
/// the services still present at the end.
pub fn browse(
    types: &[&str],
    timeout: Duration,
    mut on: impl FnMut(&Seen),
) -> Result<Vec<Found>, DiscoveryError> {
    let daemon = ServiceDaemon::new()?;
    let mut rxs = Vec::new();
    for t in types {
        rxs.push(daemon.browse(t)?);
    }
    let deadline = Instant::now() + timeout;
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    while Instant::now() < deadline {
        let mut idle = true;
        for rx in &rxs {
            while let Ok(ev) = rx.try_recv() {
                idle = false;
                match ev {
                    ServiceEvent::ServiceResolved(r) => {
                        let f = Found {
                            service_type: r.ty_domain.clone(),
                            fullname: r.get_fullname().to_string(),
                            host: r.get_hostname().to_string(),
                            port: r.get_port(),
                            addresses: r.get_addresses().iter().map(|a| a.to_ip_addr()).collect(),
                            txt: r
                                .get_properties()
                                .iter()
                                .map(|p| (p.key().to_string(), p.val_str().to_string()))
                                .collect(),
                        };
                        on(&Seen::Resolved(f.clone()));
                        found.insert(f.fullname.clone(), f);
                    }
                    ServiceEvent::ServiceRemoved(ty, fullname) => {
                        found.remove(&fullname);
                        on(&Seen::Removed {
                            service_type: ty,
                            fullname,
                        });
                    }
                    _ => {}
                }
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    if let Ok(rx) = daemon.shutdown() {
        let _ = rx.recv_timeout(Duration::from_secs(1));
    }
    Ok(found.into_values().collect())
}
