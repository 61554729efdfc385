//! A server in this test process: `monmix::server::Server::start` on 127.0.0.1:0, the same
//! configuration as [`super::Server`] (tones input, 8 channels, the test PIN and engineer
//! token), stopped the way SIGTERM stops the binary. For tests that talk to a server over
//! real sockets but need no process boundary (no kill -9, no signals, no `/proc` figures of
//! the server alone, no stderr log): it starts in milliseconds and spawns nothing.
//!
//! Runs on the caller's tokio runtime, which must be multi-threaded (the test's own
//! blocking waits must not starve the server).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use monmix::config::Config;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct InProcess {
    pub addr: SocketAddr,
    pub osc: Option<SocketAddr>,
    /// The HTTPS address, when the config turns it on.
    pub https: Option<SocketAddr>,
    pub dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), monmix::server::ServerError>>>,
}

impl InProcess {
    /// Starts a server on the `tones` input with its config and state in `dir` (created
    /// if missing; a `monmix.toml` already there is used as it is).
    pub async fn start(dir: &Path) -> InProcess {
        Self::start_with_input(dir, "tones").await
    }

    /// Like [`InProcess::start`] with another input (`demo`, `file:…`).
    pub async fn start_with_input(dir: &Path, input: &str) -> InProcess {
        Self::start_with(dir, input, |_| {}).await
    }

    /// Like [`InProcess::start_with_input`], with a last word on the config.
    pub async fn start_with(dir: &Path, input: &str, tweak: impl FnOnce(&mut Config)) -> InProcess {
        Self::try_start(dir, input, tweak)
            .await
            .expect("in-process server starts")
    }

    /// Like [`InProcess::start_with`], returning the start error (a test of bad config).
    pub async fn try_start(
        dir: &Path,
        input: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<InProcess, monmix::server::ServerError> {
        std::fs::create_dir_all(dir).expect("server dir");
        let config = dir.join("monmix.toml");
        if !config.exists() {
            std::fs::write(&config, super::test_config()).expect("write config");
        }
        let mut cfg = Config::load(&config).expect("test config loads");
        cfg.audio.input = input.into();
        cfg.audio.channels = 8;
        cfg.server.http = SocketAddr::from(([127, 0, 0, 1], 0));
        cfg.server.osc = SocketAddr::from(([127, 0, 0, 1], 0));
        cfg.state.path = dir.join("state.json");
        // Tests never announce on a real interface; mDNS tests run in a namespace.
        cfg.mdns.enabled = false;
        tweak(&mut cfg);
        let server = monmix::server::Server::start(cfg).await?;
        let (addr, osc, https) = (server.http_addr(), server.osc_addr(), server.https_addr());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async move {
            let _ = rx.await;
        }));
        Ok(InProcess {
            addr,
            osc,
            https,
            dir: dir.to_owned(),
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// Stops as SIGTERM stops the binary (connections closed, state written) and waits;
    /// true when the server stopped cleanly.
    pub async fn stop(mut self) -> bool {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(t) => matches!(t.await, Ok(Ok(()))),
            None => false,
        }
    }

    pub fn state_json(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.join("state.json")).expect("state.json");
        serde_json::from_str(&text).expect("state.json parses")
    }
}

impl Drop for InProcess {
    /// A test that ends without `stop` still shuts its server down (the runtime, dropped
    /// after the test, cancels what is left).
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
