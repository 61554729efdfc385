//! The UDP socket glue: one task receives datagrams, store events and the meter clock,
//! runs them through [`OscCore`] and sends what it returns. Nothing else lives here.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rosc::OscPacket;
use tokio::net::UdpSocket;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::core::{OscCore, OscStats, Out, MAX_DATAGRAM};
use crate::meters::Meters;

#[derive(Debug, thiserror::Error)]
pub enum OscError {
    #[error("cannot listen for OSC on udp://{addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running OSC listener.
pub struct OscService {
    local_addr: SocketAddr,
    stats: Arc<OscStats>,
    task: JoinHandle<()>,
}

impl OscService {
    /// Binds `addr` and starts serving until `shutdown` is cancelled. `meter_hz` = 0
    /// sends no meters.
    pub async fn start(
        addr: SocketAddr,
        mut core: OscCore,
        meters: Arc<Meters>,
        meter_hz: f64,
        shutdown: CancellationToken,
    ) -> Result<OscService, OscError> {
        let sock = UdpSocket::bind(addr)
            .await
            .map_err(|source| OscError::Bind { addr, source })?;
        let local_addr = sock
            .local_addr()
            .map_err(|source| OscError::Bind { addr, source })?;
        let stats = core.stats().clone();
        let mut events = core_events(&core);
        let period = if meter_hz > 0.0 {
            Duration::from_secs_f64(1.0 / meter_hz)
        } else {
            Duration::from_secs(3600)
        };
        info!(%local_addr, "osc listening");
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM + 1];
            let mut out: Vec<Out> = Vec::with_capacity(64);
            let mut enc: Vec<u8> = Vec::with_capacity(1024);
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut events_open = true;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = sock.recv_from(&mut buf) => match r {
                        Ok((n, from)) => core.handle_datagram(Instant::now(), &buf[..n], from, &mut out),
                        Err(e) => debug!("osc recv: {e}"),
                    },
                    ev = events.recv(), if events_open => match ev {
                        Ok(ev) => core.on_event(Instant::now(), &ev, &mut out),
                        Err(RecvError::Lagged(n)) => {
                            core.stats().events_lagged.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(RecvError::Closed) => events_open = false,
                    },
                    _ = tick.tick(), if meter_hz > 0.0 => core.meter_tick(Instant::now(), &meters, &mut out),
                }
                for o in out.drain(..) {
                    enc.clear();
                    let sent =
                        match rosc::encoder::encode_into(&OscPacket::Message(o.msg), &mut enc) {
                            Ok(_) => sock.send_to(&enc, o.to).await.is_ok(),
                            Err(e) => {
                                warn!("osc encode: {e}");
                                false
                            }
                        };
                    let c = if sent {
                        &core.stats().sent
                    } else {
                        &core.stats().send_errors
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
            info!("osc stopped");
        });
        Ok(OscService {
            local_addr,
            stats,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stats(&self) -> &Arc<OscStats> {
        &self.stats
    }

    /// Waits for the task to end (after the shutdown token was cancelled).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

fn core_events(core: &OscCore) -> tokio::sync::broadcast::Receiver<crate::state::Event> {
    core.store().events()
}
