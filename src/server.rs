//! Wires the parts together: state store -> engine params, input -> engine, HTTP.
//! The only module that knows them all; `main.rs` only parses the CLI and calls it.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::audio::{self, InputOptions, InputSpec};
use crate::config::{Config, OutputConfig};
use crate::control::session::{Hub, Limits};
use crate::engine::{Engine, EngineHandle, EngineOptions};
use crate::http::{self, AppState};
use crate::state::{Store, StoreOptions};
use crate::stream::{udp_addrs_for, EncoderConfig, Lifecycle, StreamOptions, StreamService};

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Audio(#[from] crate::audio::AudioError),
    #[error(transparent)]
    Output(#[from] crate::playout::PlayoutError),
    #[error("--input: {0}")]
    InputSpec(#[from] crate::audio::SpecError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error(transparent)]
    State(#[from] crate::state::StoreError),
    #[error(transparent)]
    Stream(#[from] crate::stream::StreamError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("http server: {0}")]
    Http(std::io::Error),
    #[error(transparent)]
    Osc(#[from] crate::control::osc::OscError),
    #[error("state file {path}: {msg}")]
    StateFile { path: String, msg: String },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// A started server: listening, mixing, persisting. Dropping it without `run_until`
/// still stops the input and engine threads.
pub struct Server {
    app: Arc<AppState>,
    listener: tokio::net::TcpListener,
    http_addr: SocketAddr,
    /// The HTTPS listener and its acceptor, when `[tls] https` is set.
    https: Option<(tokio::net::TcpListener, tokio_rustls::TlsAcceptor)>,
    https_addr: Option<SocketAddr>,
    /// Keeps the input running (its thread or device stream stops on drop).
    _input: audio::InputHandle,
    shutdown: CancellationToken,
    osc: Option<crate::control::osc::OscService>,
    mdns: Option<crate::discovery::Advertiser>,
}

impl Server {
    /// Opens the state, the input and the engine, and binds the HTTP listener.
    pub async fn start(cfg: Config) -> Result<Server, ServerError> {
        cfg.validate()?;
        // First, so a bad certificate or a taken port stops the start before anything opens.
        let (https, https_addr, cert_pem) = match crate::tls::bind(&cfg).await? {
            Some((l, addr, material)) => (
                Some((l, tokio_rustls::TlsAcceptor::from(material.config))),
                Some(addr),
                Some(material.cert_pem),
            ),
            None => (None, None, None),
        };
        let spec: InputSpec = cfg.audio.input.parse()?;
        let input = audio::open(
            &spec,
            &InputOptions {
                frame_len: cfg.frame_len(),
                channels: (cfg.audio.channels > 0).then_some(cfg.audio.channels),
            },
        )?;
        let channels = input.channels;
        info!(input = %input.description, channels, frame_ms = cfg.audio.frame_ms, "input open");

        let engine = Engine::spawn(
            EngineOptions {
                channels,
                frame_len: cfg.frame_len(),
                max_mixes: cfg.engine.max_mixes,
                max_taps: cfg.engine.max_mixes * 2 + cfg.outputs.len(),
            },
            input.reader,
        )?;
        if let Some(dir) = cfg
            .state
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| ServerError::StateFile {
                path: cfg.state.path.display().to_string(),
                msg: format!("cannot create its directory: {e}"),
            })?;
        }
        let publisher = engine.clone();
        let (store, report) = Store::open(
            StoreOptions {
                path: cfg.state.path.clone(),
                channels,
                max_mixes: cfg.engine.max_mixes,
                max_clients: cfg.state.max_clients,
                debounce: Duration::from_millis(cfg.state.debounce_ms),
                outputs: cfg.outputs.iter().map(OutputConfig::key).collect(),
            },
            Box::new(move |p| publisher.publish(p)),
        )?;
        info!(?report, path = %cfg.state.path.display(), "state loaded");
        let store = Arc::new(store);

        let listener = tokio::net::TcpListener::bind(cfg.server.http)
            .await
            .map_err(|source| ServerError::Bind {
                addr: cfg.server.http,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(ServerError::Http)?;
        let shutdown = CancellationToken::new();
        let osc = if cfg.osc.enabled {
            let settings = crate::control::osc::OscSettings::from_config(&cfg, channels)
                .map_err(|e| crate::config::ConfigError::Invalid(format!("osc.allow: {e}")))?;
            let core = crate::control::osc::OscCore::new(store.clone(), settings);
            Some(
                crate::control::osc::OscService::start(
                    cfg.server.osc,
                    core,
                    engine.meters().clone(),
                    cfg.osc.meter_hz,
                    shutdown.clone(),
                )
                .await?,
            )
        } else {
            None
        };
        let mdns = if cfg.mdns.enabled {
            let ad = crate::discovery::Advert {
                name: cfg.server.name.clone(),
                host_name: cfg.mdns.host_name.clone(),
                http: http_addr,
                osc: osc.as_ref().map(|o| o.local_addr()),
                channels,
                interfaces: cfg.mdns.interfaces.clone(),
            };
            match crate::discovery::Advertiser::start(&ad) {
                Ok(a) => Some(a),
                Err(e @ crate::discovery::DiscoveryError::LoopbackOnly(_)) => {
                    info!("{e}");
                    None
                }
                Err(e) => {
                    warn!("{e}; the server runs without mDNS");
                    None
                }
            }
        } else {
            None
        };
        let stream = StreamService::with_str0m(
            engine.clone(),
            StreamOptions {
                encoder: EncoderConfig {
                    // Validated to 64..=256 kb/s; saturate anyway so a library caller's
                    // bad value reaches the encoder's own check instead of wrapping.
                    bitrate: i32::try_from(cfg.stream.bitrate_kbps.saturating_mul(1000))
                        .unwrap_or(i32::MAX),
                    complexity: i32::from(cfg.stream.complexity),
                    frame_len: cfg.frame_len(),
                },
                max_listeners: cfg.stream.max_listeners,
                udp_addrs: udp_addrs_for(http_addr, cfg.stream.public_ip),
                lifecycle: Lifecycle {
                    vanish_timeout: Duration::from_secs(cfg.stream.vanish_s),
                    ..Lifecycle::default()
                },
                ..StreamOptions::default()
            },
        )?;
        let hub = Arc::new(
            Hub::new(
                cfg.server.name.clone(),
                store.clone(),
                cfg.channel_names(channels, &input.channel_names),
                cfg.audio.frame_ms,
                cfg.security.clone(),
                Limits {
                    max_sessions_per_ip: cfg.security.max_sessions_per_ip,
                    ..Limits::default()
                },
            )
            .with_outputs(cfg.outputs.clone()),
        );
        let input_device = match &spec {
            InputSpec::Device(name) => Some(name.clone().unwrap_or_else(|| "default".into())),
            _ => None,
        };
        let outputs = crate::playout::Outputs::start(
            &cfg.outputs,
            cfg.frame_len(),
            engine.clone(),
            store.clone(),
            hub.cue_slot.clone(),
            |dev| {
                // One device, or one PipeWire graph, runs on one clock.
                input_device.as_deref() == Some(dev)
                    || input_device.as_deref().is_some_and(|i| {
                        crate::audio::device::pipewire::is_pipewire_device(Some(i))
                            && crate::audio::device::pipewire::is_pipewire_device(Some(dev))
                    })
            },
        )?;
        let app = Arc::new(AppState {
            join_url: join_url_for(https_addr.unwrap_or(http_addr), https_addr.is_some()),
            https_url: https_addr.map(|a| join_url_for(a, true)),
            cert_pem,
            stream,
            channel_names: cfg.channel_names(channels, &input.channel_names),
            input_description: input.description.clone(),
            input_stats: input.handle.stats().clone(),
            hub,
            outputs,
            config: cfg,
            store,
            engine,
            shutdown: shutdown.clone(),
            osc_stats: osc.as_ref().map(|o| o.stats().clone()),
            conn_stats: Default::default(),
        });
        Ok(Server {
            app,
            listener,
            http_addr,
            https,
            https_addr,
            _input: input.handle,
            shutdown,
            osc,
            mdns,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The bound HTTPS address, when `[tls] https` is set.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// The URL a phone on the LAN should open: the bound address, or when bound to all
    /// interfaces, the first private LAN address of this machine.
    pub fn join_url(&self) -> String {
        self.app.join_url.clone()
    }

    /// The bound OSC address, when OSC is on.
    pub fn osc_addr(&self) -> Option<SocketAddr> {
        self.osc.as_ref().map(|o| o.local_addr())
    }

    /// OSC counters, when OSC is on.
    pub fn osc_stats(&self) -> Option<Arc<crate::control::osc::OscStats>> {
        self.osc.as_ref().map(|o| o.stats().clone())
    }

    pub fn engine(&self) -> &EngineHandle {
        &self.app.engine
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.app.store
    }

    /// Serves until `signal` resolves, then stops every task and writes the state.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let token = self.shutdown.clone();
        tokio::spawn(async move {
            signal.await;
            info!("shutting down");
            token.cancel();
        });
        let router = http::router(self.app.clone());
        let limits = http::serve::ConnLimits::from_config(&self.app.config.server);
        let drain = Duration::from_secs(5);
        let plain = http::serve::serve(
            self.listener,
            None,
            router.clone(),
            limits.clone(),
            self.app.conn_stats.clone(),
            self.shutdown.clone(),
            drain,
        );
        let secure = async {
            match self.https {
                Some((listener, acceptor)) => {
                    http::serve::serve(
                        listener,
                        Some(acceptor),
                        router,
                        limits,
                        self.app.conn_stats.clone(),
                        self.shutdown.clone(),
                        drain,
                    )
                    .await
                }
                None => Ok(()),
            }
        };
        let (plain, secure) = tokio::join!(plain, secure);
        let served = plain.and(secure);
        // Withdraw the mDNS announcement, stop OSC.
        if let Some(m) = self.mdns {
            m.stop(Duration::from_secs(3)).await;
        }
        if let Some(o) = self.osc {
            o.join().await;
        }
        // Persist before anything else can fail: the mixes matter more than a clean exit.
        let flushed = self.app.store.flush();
        self.app.stream.shutdown().await;
        self.app.engine.shutdown();
        if let Err(e) = &flushed {
            error!("final state write failed: {e}");
        }
        served.map_err(ServerError::Http)?;
        flushed?;
        info!("stopped, state written");
        Ok(())
    }
}

/// The URL a phone on the LAN should open for a server bound to `addr`.
fn join_url_for(addr: SocketAddr, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    let port = addr.port();
    let ip = if addr.ip().is_unspecified() {
        lan_address().unwrap_or(IpAddr::from([127, 0, 0, 1]))
    } else {
        addr.ip()
    };
    match ip {
        IpAddr::V6(v6) => format!("{scheme}://[{v6}]:{port}/"),
        IpAddr::V4(v4) => format!("{scheme}://{v4}:{port}/"),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// First private (RFC 1918 / ULA-free) IPv4 address of an interface that is up.
fn lan_address() -> Option<IpAddr> {
    let addrs = if_addrs::get_if_addrs().ok()?;
    let v4: Vec<_> = addrs
        .iter()
        .filter(|a| !a.is_loopback())
        .filter_map(|a| match a.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect();
    v4.iter()
        .find(|ip| ip.is_private())
        .or(v4.first())
        .map(|ip| IpAddr::V4(*ip))
}

/// The join URL as a QR code drawn with half-block characters, for the console.
pub fn qr_terminal(url: &str) -> Option<String> {
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

/// `monmix state show`: the state file without token hashes.
pub fn show_state(path: &Path) -> Result<String, ServerError> {
    let file = match crate::state::persist::read_state(path)? {
        Some((file, _repairs)) => file,
        None => {
            return Err(ServerError::StateFile {
                path: path.display().to_string(),
                msg: "no such file".into(),
            })
        }
    };
    let mut value = serde_json::to_value(&file).map_err(|e| ServerError::StateFile {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    if let Some(devices) = value.get_mut("devices").and_then(|d| d.as_object_mut()) {
        for d in devices.values_mut() {
            if let Some(o) = d.as_object_mut() {
                o.remove("token_hash");
            }
        }
    }
    serde_json::to_string_pretty(&value).map_err(|e| ServerError::StateFile {
        path: path.display().to_string(),
        msg: e.to_string(),
    })
}

/// `monmix state import FILE`: merges FILE's clients into the state at `path`.
/// Refuses while a server holds the file? No lock exists yet, so the operator is told
/// in the CLI help to stop the server first; the write itself is crash-safe.
pub fn import_state(cfg: &Config, path: &Path, file: &Path) -> Result<usize, ServerError> {
    let imported = crate::state::import_seed(file)?;
    let n = imported.channels_state.len();
    let channels = if cfg.audio.channels > 0 {
        cfg.audio.channels
    } else {
        crate::limits::MAX_CHANNELS
    };
    let (store, _) = Store::open(
        StoreOptions {
            path: path.to_owned(),
            channels,
            max_mixes: cfg.engine.max_mixes,
            max_clients: cfg.state.max_clients,
            debounce: Duration::from_millis(cfg.state.debounce_ms),
            outputs: cfg.outputs.iter().map(OutputConfig::key).collect(),
        },
        Box::new(|_| {}),
    )?;
    store.import(imported)?;
    store.flush()?;
    Ok(n)
}

/// WHEP access: a client's own token opens its mix; an engineer credential opens any.
impl crate::stream::whep::WhepBackend for Hub {
    fn authorize(
        &self,
        client_id: &str,
        bearer: Option<&str>,
    ) -> Result<usize, crate::stream::whep::AuthError> {
        use crate::stream::whep::AuthError;
        if self.store.mix(client_id).is_none() {
            return Err(AuthError::UnknownClient);
        }
        let bearer = bearer.ok_or(AuthError::Unauthorized)?;
        let own = self.store.verify_token(client_id, bearer);
        if !own && !self.is_engineer_bearer(bearer) {
            return Err(AuthError::Unauthorized);
        }
        // A client beyond the engine's mix slots has no audio yet (engine.max_mixes).
        let slot = self
            .store
            .client_slot(client_id)
            .ok_or(AuthError::UnknownClient)?;
        if !own {
            self.cue_slot
                .store(slot, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(slot)
    }

    fn listening_changed(&self, client_id: &str, listening: bool) {
        self.set_listening(client_id, listening);
    }
}
