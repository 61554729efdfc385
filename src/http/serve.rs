//! The HTTP connection loop: `axum::serve` plus the bounds a stage network needs.
//!
//! `axum::serve` sets no timer, so hyper applies no header timeout: a client that opens
//! sockets and sends half a request line (slowloris) keeps each one, and its task, for
//! ever, until the process runs out of file descriptors and the phones cannot connect.
//! Here every connection has a header deadline (also between keep-alive requests), and
//! the number of open connections is capped in total and per address. The request deadline
//! and the `Host` check are middleware ([`super::guard`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Bounds on connections.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Time to receive a request's headers (and to wait for the next request on an idle
    /// keep-alive connection).
    pub header_timeout: Duration,
    /// Open HTTP connections in total. A WebSocket leaves this count when it upgrades; its
    /// sessions have their own cap (`security.max_sessions_per_ip`).
    pub max_connections: usize,
    /// Open HTTP connections from one address.
    pub max_per_ip: usize,
}

impl ConnLimits {
    /// From `[server]`.
    pub fn from_config(s: &crate::config::ServerConfig) -> Self {
        ConnLimits {
            header_timeout: Duration::from_secs_f64(s.header_timeout_secs),
            max_connections: s.max_connections,
            max_per_ip: s.max_connections_per_ip,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnStats {
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    /// Refused because a cap was reached.
    pub refused: AtomicU64,
}

/// Counts open connections per address; a slot frees itself on drop.
struct Slots {
    limits: ConnLimits,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    stats: Arc<ConnStats>,
}

struct Slot {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Slots {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut m = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let total = self.stats.open.load(Ordering::Relaxed) as usize;
        let n = m.entry(ip).or_insert(0);
        if total >= self.limits.max_connections || *n >= self.limits.max_per_ip {
            if *n == 0 {
                m.remove(&ip);
            }
            return None;
        }
        *n += 1;
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            slots: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.slots.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
        self.slots.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `router` until `shutdown`; then stops accepting, asks every connection to finish
/// and waits up to `drain` for them. With `tls`, each connection is a TLS one (the
/// handshake must finish within the header deadline). Given the same `stats`, the plain
/// and the TLS listener share the counters and the total cap (each has its per-address
/// count).
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ConnLimits,
    stats: Arc<ConnStats>,
    shutdown: CancellationToken,
    drain: Duration,
) -> std::io::Result<()> {
    let slots = Arc::new(Slots {
        limits: limits.clone(),
        per_ip: Mutex::new(HashMap::new()),
        stats: stats.clone(),
    });
    let tracker = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the loop survives.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = slots.take(peer.ip()) else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("refused a connection from {peer}: connection limit");
            continue;
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req.map(axum::body::Body::new)
            },
        ));
        let shutdown = shutdown.clone();
        let header_timeout = limits.header_timeout;
        let tls = tls.clone();
        tracker.spawn(async move {
            match tls {
                None => serve_conn(stream, service, peer, header_timeout, shutdown).await,
                Some(acceptor) => {
                    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => serve_conn(s, service, peer, header_timeout, shutdown).await,
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {peer} failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
    tracker.close();
    if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
        tracing::warn!("some HTTP connections did not finish within {drain:?}");
    }
    Ok(())
}

/// One connection, plain or TLS, until it ends or the server shuts down.
async fn serve_conn<I, S>(
    io: I,
    service: S,
    peer: SocketAddr,
    header_timeout: Duration,
    shutdown: CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<axum::body::Body>,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // HTTP/1 only (as axum::serve with axum's default features): phones speak it, and
    // WebSockets over HTTP/2 are not used.
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => log_end(peer, r),
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            log_end(peer, conn.await);
        }
    }
}

fn log_end(peer: SocketAddr, r: Result<(), hyper::Error>) {
    if let Err(e) = r {
        tracing::debug!("connection from {peer} ended: {e}");
    }
}
