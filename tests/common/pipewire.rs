//! A private PipeWire graph for tests (`scripts/pipewire-session`): virtual nodes, a
//! multichannel tones player, and the kills a stage sees (a node gone, PipeWire gone).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOOLS: [&str; 5] = ["pipewire", "wireplumber", "pw-cli", "pw-cat", "dbus-daemon"];

/// A running private PipeWire; stopped on drop.
pub struct PipeWire {
    session: Child,
    pub dir: tempfile::TempDir,
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

impl PipeWire {
    /// Starts one, or says why it cannot ([`super::cannot_run`]) and gives `None`.
    pub fn start() -> Option<PipeWire> {
        if let Some(t) = TOOLS.iter().find(|t| !on_path(t)) {
            super::cannot_run(&format!(
                "{t} missing (scripts/setup test installs PipeWire)"
            ));
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("monmix-pw-")
            .tempdir()
            .ok()?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pipewire-session");
        let mut session = Command::new(script)
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scripts/pipewire-session");
        let Some(out) = session.stdout.take() else {
            let _ = session.kill();
            let _ = session.wait();
            return None;
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if l.contains("ready") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = session.kill();
            panic!(
                "private PipeWire did not come up (logs in {:?})",
                dir.path()
            );
        }
        Some(PipeWire { session, dir })
    }

    /// What a client needs to reach this graph.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![(
            "XDG_RUNTIME_DIR".into(),
            self.dir.path().display().to_string(),
        )]
    }

    /// A short-lived PipeWire tool, killed after 10 s: a client talking to a daemon that is
    /// being killed has been seen to wait forever (`pw-cli info 0`, 12 minutes).
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("timeout");
        c.args(["-k", "2", "10", prog]);
        c.envs(self.env());
        c
    }

    /// `pw-dump` as JSON (empty when the daemon is gone).
    pub fn dump(&self) -> serde_json::Value {
        let out = self.cmd("pw-dump").output().map(|o| o.stdout);
        serde_json::from_slice(&out.unwrap_or_default()).unwrap_or_default()
    }

    /// The id of the node named `name`.
    pub fn node_id(&self, name: &str) -> Option<u64> {
        self.dump().as_array()?.iter().find_map(|o| {
            (o["type"] == "PipeWire:Interface:Node" && o["info"]["props"]["node.name"] == name)
                .then(|| o["id"].as_u64())
                .flatten()
        })
    }

    /// Creates a virtual sink of `channels` AUX channels (a stage bus: whatever plays
    /// into it can be captured from its monitor), and waits until it is in the graph.
    pub fn create_sink(&self, name: &str, channels: usize) {
        let pos: Vec<String> = (0..channels).map(|k| format!("AUX{k}")).collect();
        let props = format!(
            "{{ factory.name=support.null-audio-sink node.name={name} media.class=Audio/Sink \
             audio.channels={channels} audio.position=[{}] object.linger=true }}",
            pos.join(" ")
        );
        let ok = self
            .cmd("pw-cli")
            .args(["create-node", "adapter", &props])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "pw-cli create-node {name} failed");
        self.wait_for(|| self.node_id(name).is_some(), &format!("node {name}"));
    }

    /// Destroys the node named `name` (an interface unplugged, a bus removed).
    pub fn destroy(&self, name: &str) {
        let id = self.node_id(name).expect("node to destroy");
        let ok = self
            .cmd("pw-cli")
            .args(["destroy", &id.to_string()])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "pw-cli destroy {id} failed");
    }

    fn pid(&self, daemon: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir.path().join(format!("{daemon}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// SIGKILLs PipeWire, WirePlumber and the pulse server: the sound server crashed.
    pub fn kill_daemons(&self) {
        for d in ["pipewire-pulse", "wireplumber", "pipewire"] {
            if let Some(pid) = self.pid(d) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        let sock = self.dir.path().join("pipewire-0");
        self.wait_for(|| !self.answers(), "PipeWire to go away");
        let _ = std::fs::remove_file(sock);
    }

    /// Starts PipeWire and WirePlumber again, and waits until the graph answers.
    pub fn restart_daemons(&self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pipewire-session");
        for d in ["pipewire", "wireplumber"] {
            let ok = Command::new(&script)
                .args([self.dir.path().as_os_str(), "restart".as_ref(), d.as_ref()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "restart {d}");
            if d == "pipewire" {
                self.wait_for(|| self.answers(), "PipeWire to answer");
            }
        }
        // WirePlumber is up once its client is in the graph (the null sink that the first
        // start shows comes from pipewire-pulse, which a stage machine may not run).
        self.wait_for(
            || self.dump().to_string().contains("\"WirePlumber\""),
            "WirePlumber",
        );
    }

    fn answers(&self) -> bool {
        self.cmd("pw-cli")
            .args(["info", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn wait_for(&self, mut f: impl FnMut() -> bool, what: &str) {
        let end = Instant::now() + Duration::from_secs(15);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Plays `wav` into `target` over and over (pw-cat restarted whenever it exits: the end
    /// of the file, a node gone, PipeWire gone) until the player is dropped.
    pub fn play(&self, wav: &Path, target: &str, channels: usize) -> Player {
        let stop = Arc::new(AtomicBool::new(false));
        let current: Arc<Mutex<Option<Child>>> = Arc::default();
        let map: Vec<String> = (0..channels).map(|k| format!("AUX{k}")).collect();
        let args: Vec<String> = vec![
            "-p".into(),
            "--target".into(),
            target.into(),
            "--channels".into(),
            channels.to_string(),
            "--channel-map".into(),
            map.join(","),
            wav.display().to_string(),
        ];
        let env = self.env();
        let thread = std::thread::spawn({
            let (stop, current) = (stop.clone(), current.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    let child = Command::new("pw-cat")
                        .args(&args)
                        .envs(env.clone())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn();
                    let Ok(child) = child else { return };
                    *current.lock().unwrap() = Some(child);
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let done = current
                            .lock()
                            .unwrap()
                            .as_mut()
                            .is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
                        if done {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    if let Some(mut c) = current.lock().unwrap().take() {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        });
        Player {
            stop,
            current,
            thread: Some(thread),
        }
    }
}

impl Drop for PipeWire {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.session.id().to_string())
            .status();
        let _ = self.session.wait();
    }
}

impl PipeWire {
    /// Starts recording `channels` channels from `target` (a sink's monitor) into `path`,
    /// 16-bit. `target` `None`: a stream linked to nothing; the caller links its ports
    /// (`input_FL`, `input_FR`, ...) with [`PipeWire::link`].
    pub fn record(&self, target: Option<&str>, channels: usize, path: &Path) -> Recorder {
        // A capture stream aimed at a sink records its monitor only when it says so;
        // otherwise WirePlumber links it to the default source.
        // Not `cmd`: it runs as long as the caller wants, and takes its SIGINT directly.
        let mut c = Command::new("pw-record");
        c.envs(self.env());
        if target.is_some() {
            c.args(["-P", "{ stream.capture.sink=true stream.dont-remix=true }"]);
        }
        let child = c
            .args([
                "--target",
                target.unwrap_or("0"),
                "--channels",
                &channels.to_string(),
                "--format",
                "s16",
                "--rate",
                "48000",
            ])
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pw-record");
        Recorder {
            child,
            path: path.to_owned(),
            channels,
        }
    }

    /// `pw-link OUT IN`, retried until both ports exist.
    pub fn link(&self, out: &str, inp: &str) {
        self.wait_for(
            || {
                self.cmd("pw-link")
                    .args([out, inp])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            },
            &format!("link {out} -> {inp}"),
        );
    }
}

/// A running pw-record.
pub struct Recorder {
    child: Child,
    path: PathBuf,
    channels: usize,
}

impl Recorder {
    /// Stops it (SIGINT: pw-record closes the file) and returns the interleaved samples.
    pub fn finish(mut self) -> Vec<f32> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let bytes = std::fs::read(&self.path).unwrap_or_default();
        // The samples after the "data" chunk header, whatever sizes the header claims.
        let start = bytes
            .windows(4)
            .position(|w| w == b"data")
            .map_or(bytes.len(), |p| p + 8);
        let mut pcm: Vec<f32> = bytes[start.min(bytes.len())..]
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
            .collect();
        pcm.truncate(pcm.len() / self.channels * self.channels);
        pcm
    }
}

/// A looping pw-cat; stopped on drop.
pub struct Player {
    stop: Arc<AtomicBool>,
    current: Arc<Mutex<Option<Child>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Player {
    /// Ends the current pw-cat; the loop starts a new one (linked afresh).
    pub fn restart(&self) {
        if let Some(c) = self.current.lock().unwrap().as_mut() {
            let _ = c.kill();
        }
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.restart();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes `secs` of `channels` tones, channel k at `tone_frequency(k)` and `dbfs(k)`
/// (`None`: digital silence), as a 16-bit WAV (what a stage interface's channels carry).
///
/// A plain PCM header, written here: hound writes WAVE_FORMAT_EXTENSIBLE with a speaker
/// mask for more than two channels, pw-cat then takes the file as surround
/// (FL FR FC LFE ...) and PipeWire remixes it into the AUX bus, smearing the channels.
pub fn write_tones_wav(
    path: &Path,
    channels: usize,
    secs: f64,
    dbfs: impl Fn(usize) -> Option<f64>,
) -> PathBuf {
    let frames = (secs * 48_000.0) as usize;
    let mut samples = Vec::with_capacity(frames * channels);
    let amp: Vec<f64> = (0..channels)
        .map(|k| dbfs(k).map_or(0.0, |d| 10f64.powf(d / 20.0) * 32767.0))
        .collect();
    let step: Vec<f64> = (0..channels)
        .map(|k| std::f64::consts::TAU * monmix::audio::tones::tone_frequency(k) / 48_000.0)
        .collect();
    for n in 0..frames {
        for (s, a) in step.iter().zip(&amp) {
            samples.push((a * (s * n as f64).sin()).round() as i16);
        }
    }
    write_wav(path, channels, &samples)
}

/// Writes interleaved 16-bit samples at 48 kHz as a WAV with a plain PCM header.
pub fn write_wav(path: &Path, channels: usize, samples: &[i16]) -> PathBuf {
    let data_len = (samples.len() * 2) as u32;
    let ch = channels as u16;
    let mut b: Vec<u8> = Vec::with_capacity(44 + samples.len() * 2);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&ch.to_le_bytes());
    b.extend_from_slice(&48_000u32.to_le_bytes());
    b.extend_from_slice(&(48_000 * u32::from(ch) * 2).to_le_bytes());
    b.extend_from_slice(&(ch * 2).to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for v in samples {
        b.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, b).expect("write wav");
    path.to_owned()
}
