//! Shared by the two integration-test binaries (`tests/it`, `tests/solo`): a real `monmix serve` process on 127.0.0.1 with
//! ephemeral ports, and a WebSocket client that validates every server message against
//! `protocol/schema/`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod alloc;
pub mod churn;
pub mod feeder;
pub mod fft;
pub mod in_process;
pub mod latency;
pub mod netns;
pub mod pipewire;
pub mod proc_stats;
pub mod reference_mix;
pub mod whep_client;
pub mod whep_listener;

/// A test that cannot run here (needs root, a network namespace, a tool). Under CI
/// (`CI=true`, which `.ci/run` sets) that is a failure, never a silent pass; elsewhere it
/// says so loudly and the caller returns.
pub fn cannot_run(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("this test cannot run under CI: {why}");
    }
    eprintln!("\n*** SKIPPED: {why} ***\n");
}

/// How [`Server::start_with_env`] starts the process.
#[derive(Default)]
pub struct Launch {
    pub env: Vec<(String, String)>,
    /// No `--channels`: the input decides (a PipeWire node's own count).
    pub own_channels: bool,
}

/// A running server process; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub stderr_log: PathBuf,
    /// The bound OSC address (from the `monmix osc on udp://ADDR` line), if OSC is on.
    pub osc: Option<SocketAddr>,
}

pub const ADMIN_PIN: &str = "2468";

/// The servers' `monmix.toml`: named channels, the admin PIN, one engineer token, and
/// a 4 s vanish limit (see `whep_client::TEST_VANISH`).
pub fn test_config() -> String {
    format!(
        "[audio]\nchannel_names = [\"Kick\", \"Snare\", \"Bass\", \"Keys\"]\n\
         [security]\nadmin_pin = \"{ADMIN_PIN}\"\nengineer_tokens = [\"eng-token-0123456789\"]\n\
         [stream]\nvanish_s = 4\n"
    )
}

/// Where clients connect: a server process or one in this process.
pub trait Endpoint {
    /// The HTTP (and WebSocket, WHEP) address.
    fn addr(&self) -> SocketAddr;
    /// The OSC address, if OSC is on.
    fn osc(&self) -> Option<SocketAddr>;
    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr())
    }
}

impl Endpoint for Server {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn osc(&self) -> Option<SocketAddr> {
        self.osc
    }
}

impl Endpoint for in_process::InProcess {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn osc(&self) -> Option<SocketAddr> {
        self.osc
    }
}

impl Server {
    /// Starts `monmix serve --input tones` with its state in `dir` (created if missing).
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        Server::launch(
            dir,
            &dir.join("state.json"),
            "tones",
            extra,
            &Launch::default(),
        )
    }

    /// Like `start`, with the state file elsewhere than `dir` (which holds the config and
    /// the server's log).
    pub fn start_with_state(dir: &Path, state: &Path, extra: &[&str]) -> Server {
        Server::launch(dir, state, "tones", extra, &Launch::default())
    }

    /// Like [`Server::start`] with another `--input` (e.g. `demo`).
    pub fn start_with_input(dir: &Path, input: &str, extra: &[&str]) -> Server {
        Server::launch(
            dir,
            &dir.join("state.json"),
            input,
            extra,
            &Launch::default(),
        )
    }

    /// Like [`Server::start_with_input`] with extra environment, and the channel count
    /// left to the input (no `--channels 8`) when `launch.own_channels`.
    pub fn start_with_env(dir: &Path, input: &str, extra: &[&str], launch: &Launch) -> Server {
        Server::launch(dir, &dir.join("state.json"), input, extra, launch)
    }

    fn launch(dir: &Path, state: &Path, input: &str, extra: &[&str], launch: &Launch) -> Server {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("monmix.toml");
        if !config.exists() {
            std::fs::write(&config, test_config()).unwrap();
        }
        let stderr_log = dir.join(format!("server-{}.log", std::process::id()));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_log)
            .unwrap();
        let mut args: Vec<String> = [
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--input",
            input,
            "--http",
            "127.0.0.1:0",
            "--osc",
            "127.0.0.1:0",
            "--state",
            state.to_str().unwrap(),
            "--no-qr",
            // Tests never announce on a real interface; mDNS tests run in a namespace.
            "--no-mdns",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !launch.own_channels {
            args.extend(["--channels".to_string(), "8".to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_monmix"))
            .args(&args)
            .env("MONMIX_LOG", "info")
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn monmix");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut osc: Option<String> = None;
            let mut http: Option<String> = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("monmix osc on udp://") {
                    osc = Some(rest.trim().to_string());
                }
                // The OSC line comes first; the join line ends the start-up banner.
                if line.starts_with("Join from a phone") {
                    let _ = tx.send((http.take().unwrap_or_default(), osc.take()));
                }
                if let Some(rest) = line.strip_prefix("monmix listening on http://") {
                    http = Some(rest.trim_end_matches('/').to_string());
                }
            }
        });
        let (addr, osc) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((a, o)) => (a.parse().unwrap(), o.map(|o| o.parse().unwrap())),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start; log:\n{}",
                    std::fs::read_to_string(&stderr_log).unwrap_or_default()
                );
            }
        };
        Server {
            child,
            addr,
            dir: dir.to_owned(),
            stderr_log,
            osc,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{sig} failed");
    }

    /// SIGKILL and reap.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, wait for exit; returns the exit status code.
    pub fn terminate(mut self) -> Option<i32> {
        self.signal(15);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn state_json(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("state.json")).unwrap())
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn schemas() -> &'static HashMap<String, jsonschema::Validator> {
    static S: OnceLock<HashMap<String, jsonschema::Validator>> = OnceLock::new();
    S.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol/schema");
        let mix: Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("mix.json")).unwrap()).unwrap();
        let mut out = HashMap::new();
        for entry in std::fs::read_dir(root.join("server")).unwrap() {
            let path = entry.unwrap().path();
            let mut schema: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            inline_refs(&mut schema, &mix);
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let v =
                jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("schema {name}: {e}"));
            out.insert(name, v);
        }
        out
    })
}

/// Replaces `{"$ref": "mix.json"}` with the mix schema (no file resolver needed).
fn inline_refs(v: &mut Value, mix: &Value) {
    match v {
        Value::Object(o) => {
            if o.get("$ref").and_then(Value::as_str) == Some("mix.json") {
                let mut m = mix.clone();
                if let Some(mo) = m.as_object_mut() {
                    mo.remove("$schema");
                }
                *v = m;
                return;
            }
            for x in o.values_mut() {
                inline_refs(x, mix);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| inline_refs(x, mix)),
        _ => {}
    }
}

/// Panics unless `msg` is valid against `protocol/schema/server/<type>.json`.
pub fn assert_schema(msg: &Value) {
    let ty = msg["type"]
        .as_str()
        .unwrap_or_else(|| panic!("no type: {msg}"));
    let v = schemas()
        .get(ty)
        .unwrap_or_else(|| panic!("no schema for server message type {ty}: {msg}"));
    if let Err(e) = v.validate(msg) {
        panic!("server message violates schema {ty}: {e}\n{msg}");
    }
}

pub struct Ws {
    pub inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn connect(url: &str) -> Ws {
        let (inner, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        Ws { inner }
    }

    pub async fn send(&mut self, v: Value) {
        self.inner
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.inner
            .send(Message::Text(text.to_string().into()))
            .await
            .unwrap();
    }

    /// Next JSON message (schema-checked), skipping pings; None on close or timeout.
    pub async fn recv_timeout(&mut self, t: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + t;
        loop {
            let m = tokio::time::timeout_at(deadline, self.inner.next())
                .await
                .ok()??;
            match m {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("server sent JSON");
                    assert_schema(&v);
                    return Some(v);
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                _ => continue,
            }
        }
    }

    pub async fn recv(&mut self) -> Value {
        self.recv_timeout(Duration::from_secs(5))
            .await
            .expect("a message within 5 s")
    }

    /// Skips messages until one of type `ty` arrives.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let m = self.recv().await;
            if m["type"] == ty {
                return m;
            }
        }
    }

    /// Like `connect`, but None when the server is gone (crash tests).
    pub async fn try_connect(url: &str) -> Option<Ws> {
        let (inner, _) = tokio_tungstenite::connect_async(url).await.ok()?;
        Some(Ws { inner })
    }

    /// Like `send`; false when the socket is gone.
    pub async fn try_send(&mut self, v: Value) -> bool {
        self.inner
            .send(Message::Text(v.to_string().into()))
            .await
            .is_ok()
    }

    /// Skips messages until one of type `ty`; None on close or after `t`.
    pub async fn try_recv_type(&mut self, ty: &str, t: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + t;
        loop {
            let left = deadline.checked_duration_since(tokio::time::Instant::now())?;
            let m = self.recv_timeout(left).await?;
            if m["type"] == ty {
                return Some(m);
            }
        }
    }

    /// A musician `name` whose mix is channel 0 alone, panned hard left (what the latency
    /// tests send a click through); returns once subscribed.
    pub async fn channel_0_left(url: &str, name: &str) -> Ws {
        let mut ws = Ws::connect(url).await;
        ws.hello(serde_json::json!({ "name": name })).await;
        ws.send(serde_json::json!({"type":"subscribe","channels":[0],"pans":{"0":-1.0}}))
            .await;
        ws.recv_type("subscribed").await;
        ws
    }

    /// Sends `hello` and returns `welcome`.
    pub async fn hello(&mut self, hello: Value) -> Value {
        let mut h = hello;
        h["type"] = "hello".into();
        self.send(h).await;
        let w = self.recv().await;
        assert_eq!(w["type"], "welcome", "{w}");
        w
    }
}
