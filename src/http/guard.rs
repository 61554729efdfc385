//! Guards every request passes before a route sees it: the `Host` check against DNS
//! rebinding, and a deadline for the whole request.
//!
//! Why a Host check: the WebSocket's Origin check compares `Origin` with `Host`, but a page
//! at `http://evil.example:8000` whose name an attacker re-points at the band's server (DNS
//! rebinding) sends `Origin` and `Host` both as `evil.example:8000`: they match, and the page
//! could move every fader. Phones reach monmix by IP address (the QR code), by the mDNS name
//! (`monmix.local`) or as `localhost`; any other name means a page the band did not open.
//! A request without `Host` (an HTTP/1.0 script) passes: browsers always send one.
//!
//! Why a deadline: a client that trickles a request body (slowloris on `POST /whep`) would
//! otherwise hold a task and a socket for ever. The header phase has its own timeout in
//! [`super::serve`]; WebSocket upgrades answer at once and are not limited here.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Which `Host` names the server answers to, and how long a request may take.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Lower-case names without port or trailing dot; `localhost` and IP literals are
    /// always allowed.
    names: Vec<String>,
    pub request_timeout: Duration,
}

impl Guard {
    /// `mdns_host` is the announced host label (`monmix` → `monmix.local`); `extra` are the
    /// operator's `security.allowed_hosts` (e.g. a DNS name of the stage router).
    pub fn new(mdns_host: &str, extra: &[String], request_timeout: Duration) -> Self {
        let mut names = vec![format!("{}.local", mdns_host.to_ascii_lowercase())];
        names.extend(extra.iter().map(|h| normalize(h)));
        Guard {
            names,
            request_timeout,
        }
    }

    /// Whether a `Host` header value (`name[:port]`, `[v6][:port]`) names this server.
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim();
        if let Some(rest) = host.strip_prefix('[') {
            return match rest.split_once(']') {
                Some((v6, port)) => valid_port_suffix(port) && v6.parse::<Ipv6Addr>().is_ok(),
                None => false,
            };
        }
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.parse::<u16>().is_ok() => name,
            Some(_) => return false,
            None => host,
        };
        if name.parse::<Ipv4Addr>().is_ok() {
            return true;
        }
        let name = normalize(name);
        !name.is_empty() && (name == "localhost" || self.names.contains(&name))
    }
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn valid_port_suffix(s: &str) -> bool {
    s.is_empty()
        || s.strip_prefix(':')
            .is_some_and(|p| p.parse::<u16>().is_ok())
}

/// Middleware: 421 for a foreign `Host`, 408 for a request that outlives the deadline.
pub async fn guard(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let host = match req.headers().get(header::HOST) {
        Some(h) => Some(h.to_str().unwrap_or("\u{fffd}").to_owned()),
        // HTTP/2 carries the authority in the URI instead.
        None => req.uri().authority().map(|a| a.as_str().to_owned()),
    };
    if let Some(host) = host {
        if !g.host_allowed(&host) {
            tracing::debug!("refused request for foreign host {host:?}");
            return (
                StatusCode::MISDIRECTED_REQUEST,
                "host not allowed: open monmix by its IP address or its .local name, \
                 or add this name to security.allowed_hosts\n",
            )
                .into_response();
        }
    }
    match tokio::time::timeout(g.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request took too long\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let g = Guard::new("monmix", &["Stage.Example.".into()], Duration::from_secs(1));
        for ok in [
            "127.0.0.1:8000",
            "10.0.0.5",
            "[::1]:8000",
            "[fe80::1]",
            "localhost:8000",
            "LOCALHOST",
            "monmix.local:8000",
            "monmix.local.",
            "stage.example:80",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example:8000",
            "monmix.local.evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil:8000",
            "[::1",
            "[::1]x",
            "host:99999",
            "",
            ":8000",
            "[nonsense]:80",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
    }
}
