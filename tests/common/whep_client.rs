#![allow(dead_code)] // a shared helper file: each test binary uses part of it
//! A WHEP test bench without the full server: a real-time `tones` input, the engine, the
//! streaming service and its WHEP router on 127.0.0.1:0, with a token map as backend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::feeder::Feeder;
use super::whep_listener::{ClientOptions, WhepListener};
use monmix::engine::{ChannelParams, Engine, EngineHandle, EngineOptions, EngineParams, MixParams};
use monmix::stream::whep::{self, AuthError, WhepBackend};
use monmix::stream::{Lifecycle, StreamOptions, StreamService};

/// How long the test servers keep a silent listener (the product's default is 15 s, for
/// Firefox). The test peers (webrtc-rs) close without anything the server sees, so tests
/// of a listener going away wait for this; their consent checks come every 2 s.
pub const TEST_VANISH: std::time::Duration = std::time::Duration::from_secs(4);

/// Token map: client id -> (token, slot). Records `listening_changed` calls.
#[derive(Default)]
pub struct TestBackend {
    pub clients: HashMap<String, (String, usize)>,
    pub events: Mutex<Vec<(String, bool)>>,
}

impl WhepBackend for TestBackend {
    fn authorize(&self, client_id: &str, bearer: Option<&str>) -> Result<usize, AuthError> {
        let (token, slot) = self
            .clients
            .get(client_id)
            .ok_or(AuthError::UnknownClient)?;
        if bearer == Some(token.as_str()) {
            Ok(*slot)
        } else {
            Err(AuthError::Unauthorized)
        }
    }

    fn listening_changed(&self, client_id: &str, listening: bool) {
        self.events
            .lock()
            .expect("events")
            .push((client_id.to_owned(), listening));
    }
}

pub struct Bench {
    pub engine: EngineHandle,
    pub service: StreamService,
    pub backend: Arc<TestBackend>,
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    pub feeder: Feeder,
    server: tokio::task::JoinHandle<()>,
}

pub struct BenchConfig {
    pub channels: usize,
    pub frame_len: usize,
    pub max_mixes: usize,
    pub max_taps: usize,
    pub stream: StreamOptions,
    /// (client id, token, slot)
    pub clients: Vec<(String, String, usize)>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            channels: 8,
            frame_len: 480,
            max_mixes: 4,
            max_taps: 16,
            stream: StreamOptions {
                shards: 2,
                ..StreamOptions::default()
            },
            clients: vec![
                ("alice".into(), "tok-a".into(), 0),
                ("bob".into(), "tok-b".into(), 1),
                ("eng".into(), "tok-e".into(), 0),
            ],
        }
    }
}

impl Bench {
    /// Starts everything. Must run inside a multi-threaded tokio runtime.
    pub async fn start(cfg: BenchConfig) -> Bench {
        let (feeder, r) = Feeder::start(cfg.channels, cfg.frame_len);
        let engine = Engine::spawn(
            EngineOptions {
                channels: cfg.channels,
                frame_len: cfg.frame_len,
                max_mixes: cfg.max_mixes,
                max_taps: cfg.max_taps,
            },
            r,
        )
        .expect("engine");
        let mut stream = cfg.stream;
        if stream.lifecycle.vanish_timeout == Lifecycle::default().vanish_timeout {
            stream.lifecycle.vanish_timeout = TEST_VANISH;
        }
        let service = StreamService::with_str0m(engine.clone(), stream).expect("stream service");
        let backend = Arc::new(TestBackend {
            clients: cfg
                .clients
                .into_iter()
                .map(|(c, t, s)| (c, (t, s)))
                .collect(),
            events: Mutex::new(Vec::new()),
        });
        let app = whep::router(service.clone(), backend.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            drop(axum::serve(listener, app).await);
        });
        Bench {
            engine,
            service,
            backend,
            origin,
            feeder,
            server,
        }
    }

    pub fn url(&self, client: &str) -> String {
        format!("{}/whep/{client}", self.origin)
    }

    /// Connects a listener and waits until media flows.
    pub async fn listen(&self, client: &str, token: &str, opts: ClientOptions) -> WhepListener {
        let l = WhepListener::connect(&self.url(client), Some(token), opts)
            .await
            .expect("WHEP connect");
        assert!(
            l.wait_connected(Duration::from_secs(10)).await,
            "peer did not connect"
        );
        l
    }

    pub async fn stop(self) {
        self.service.shutdown().await;
        self.server.abort();
        drop(self.feeder.stop());
        self.engine.shutdown();
    }
}

/// A channel of a mix: (input channel, gain, pan).
pub fn mix(chans: &[(usize, f32, f32)], n_inputs: usize) -> MixParams {
    let mut channels = vec![ChannelParams::default(); n_inputs];
    for &(c, gain, pan) in chans {
        channels[c] = ChannelParams {
            gain,
            pan,
            subscribed: true,
            muted: false,
            soloed: false,
        };
    }
    MixParams {
        channels,
        master: 1.0,
    }
}

pub fn params(mixes: Vec<Option<MixParams>>) -> EngineParams {
    EngineParams::new(mixes)
}

/// Polls `cond` every 10 ms until true or `timeout`.
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}
