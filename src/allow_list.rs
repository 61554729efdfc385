//! Source-address allow-list (CIDR networks) for OSC datagrams.

use std::net::IpAddr;

/// Loopback, private, link-local and unique-local networks: the stage LAN, never the
/// internet (the default `osc.allow`).
pub const PRIVATE_NETWORKS: [&str; 8] = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a network (expected ADDR/LEN, e.g. 192.168.0.0/16)")]
pub struct BadNetwork(pub String);

/// Networks allowed to send OSC. IPv4-mapped IPv6 sources are checked as IPv4.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    nets: Vec<(IpAddr, u8)>,
}

impl AllowList {
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<AllowList, BadNetwork> {
        let mut nets = Vec::with_capacity(items.len());
        for s in items {
            let s = s.as_ref().trim();
            let bad = || BadNetwork(s.to_owned());
            let (addr, len) = match s.split_once('/') {
                Some((a, l)) => (
                    a.parse::<IpAddr>().map_err(|_| bad())?,
                    Some(l.parse::<u8>().map_err(|_| bad())?),
                ),
                None => (s.parse::<IpAddr>().map_err(|_| bad())?, None),
            };
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len = len.unwrap_or(max);
            if len > max {
                return Err(bad());
            }
            nets.push((addr, len));
        }
        Ok(AllowList { nets })
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        self.nets.iter().any(|&(net, len)| contains(net, len, ip))
    }
}

fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_allow_private_and_deny_public() {
        let a = AllowList::parse(&PRIVATE_NETWORKS).unwrap();
        for ok in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.0.1",
            "192.168.1.10",
            "169.254.3.4",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:192.168.0.2",
        ] {
            assert!(a.allows(ok.parse().unwrap()), "{ok}");
        }
        for no in [
            "8.8.8.8",
            "172.32.0.1",
            "192.169.0.1",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!a.allows(no.parse().unwrap()), "{no}");
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(AllowList::parse(&["10.0.0.0/33"]).is_err());
        assert!(AllowList::parse(&["banana"]).is_err());
        assert!(AllowList::parse(&["10.0.0.1"])
            .unwrap()
            .allows("10.0.0.1".parse().unwrap()));
        assert!(AllowList::parse(&["0.0.0.0/0"])
            .unwrap()
            .allows("1.2.3.4".parse().unwrap()));
    }
}
