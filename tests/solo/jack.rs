//! JACK (issue 14): capture from and play to a JACK graph through cpal's JACK host
//! (`device:jack`, `[[output]] device = "jack"`), on jackd2's dummy backend: no sound card,
//! but a real JACK server with its own clock, period and process cycle.
//!
//! A metronome client (`jack_metro`: a 1 kHz burst every 250 ms at 0.1 peak) feeds
//! monmix's first input port; Ana's mix, the click panned left, goes out on monmix's
//! output ports; one `jack_rec` client records the metronome and both outputs in the same
//! process cycle, so level, isolation and latency are the wire's own.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::churn::{metrics, must};
use crate::common::fft::{assert_absent, assert_level, channel, tone_level_dbfs};
use crate::common::latency::{matched, onsets, report};
use crate::common::{Launch, Server, Ws};

const CLICK_HZ: f64 = 1000.0;

/// A private jackd (dummy backend, 48 kHz, one 10 ms period) and the clients of the test;
/// all killed on drop.
struct Jack {
    name: String,
    period: usize,
    procs: Vec<Child>,
}

impl Drop for Jack {
    fn drop(&mut self) {
        self.stop_all();
    }
}

impl Jack {
    /// None when jackd is not installed (`scripts/setup test` installs jackd2). `period`:
    /// the server's period in samples (monmix's frame, for the lowest latency).
    fn start(period: usize) -> Option<Jack> {
        if Command::new("jackd").arg("--version").output().is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "jackd missing: run scripts/setup test"
            );
            eprintln!("jackd missing: JACK test skipped");
            return None;
        }
        let mut jack = Jack {
            name: format!("monmix-test-{}-{period}", std::process::id()),
            period,
            procs: Vec::new(),
        };
        jack.start_server();
        Some(jack)
    }

    /// jackd under this object's name and period; returns once it answers.
    fn start_server(&mut self) {
        let period = self.period.to_string();
        let server = Command::new("jackd")
            .args([
                "-n", &self.name, "-d", "dummy", "-r", "48000", "-p", &period,
            ])
            .args(["-C", "2", "-P", "2"])
            .env("JACK_NO_AUDIO_RESERVATION", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("jackd");
        self.procs.push(server);
        let t0 = Instant::now();
        while !self.tool("jack_lsp", &[]) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "jackd did not come up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the clients and jackd, newest first. SIGTERM, not SIGKILL: a killed jackd
    /// leaves its entry in JACK's shared-memory registry, and after a few the next one
    /// refuses ("Too many servers already active").
    fn stop_all(&mut self) {
        for mut p in self.procs.drain(..).rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &p.id().to_string()])
                .status();
            let t0 = Instant::now();
            while matches!(p.try_wait(), Ok(None)) && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = p.kill();
            let _ = p.wait();
        }
    }

    /// `jack_metro` as client "metro": a 1 kHz burst every 250 ms at 0.1 peak.
    fn metronome(&mut self) {
        self.spawn(
            "jack_metro",
            &[
                "-n", "metro", "-b", "240", "-f", "1000", "-A", "0.1", "-D", "40",
            ],
        );
    }

    /// True once every port in `ports` exists (in `jack_lsp`'s list: it exits 0 for a
    /// port it does not know).
    fn wait_ports(&self, ports: &[&str], within: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < within {
            let listed = Command::new("timeout")
                .args(["-k", "2", "10", "jack_lsp"])
                .envs(self.env())
                .stderr(Stdio::null())
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            if ports.iter().all(|p| listed.lines().any(|l| l.trim() == *p)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("JACK_DEFAULT_SERVER".into(), self.name.clone()),
            ("JACK_NO_AUDIO_RESERVATION".into(), "1".into()),
        ]
    }

    /// A short JACK tool, killed after 10 s; true when it succeeded.
    fn tool(&self, prog: &str, args: &[&str]) -> bool {
        Command::new("timeout")
            .args(["-k", "2", "10", prog])
            .args(args)
            .envs(self.env())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn spawn(&mut self, prog: &str, args: &[&str]) {
        let child = Command::new(prog)
            .args(args)
            .envs(self.env())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{prog}: {e}"));
        self.procs.push(child);
    }

    /// `jack_connect`, retried until both ports exist.
    fn connect(&self, from: &str, to: &str) {
        let t0 = Instant::now();
        while !self.tool("jack_connect", &[from, to]) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "connect {from} -> {to}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Records `ports` for `secs` in one client; interleaved samples.
    fn record(&self, path: &Path, secs: u32, ports: &[&str]) -> Vec<f32> {
        let mut args = vec!["-f", path.to_str().unwrap(), "-b", "16"];
        let d = secs.to_string();
        args.extend(["-d", &d]);
        args.extend_from_slice(ports);
        let ok = Command::new("timeout")
            .args(["-k", "2", &(secs + 10).to_string(), "jack_rec"])
            .args(&args)
            .envs(self.env())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "jack_rec failed");
        let bytes = std::fs::read(path).unwrap_or_default();
        let start = bytes
            .windows(4)
            .position(|w| w == b"data")
            .map_or(bytes.len(), |p| p + 8);
        bytes[start.min(bytes.len())..]
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jack_in_and_out_through_a_jack_server() {
    let _solo = crate::solo();
    for (frame_ms, period) in [("10", 480), ("5", 240), ("2.5", 120)] {
        if !through_jack(frame_ms, period).await {
            return;
        }
    }
}

/// monmix on `jack`'s server at `frame_ms`: input `device:jack` with the metronome on
/// its first port, Ana's mix (the click hard left) on JACK output ports 1 and 2.
async fn serve_on_jack(jack: &mut Jack, frame_ms: &str) -> (tempfile::TempDir, Server, Ws) {
    jack.metronome();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("monmix.toml"),
        format!(
            "{}[[output]]\ndevice = \"jack\"\nchannels = [1, 2]\nmix = \"Ana\"\n",
            crate::common::test_config()
        ),
    )
    .unwrap();
    let server = Server::start_with_env(
        dir.path(),
        "device:jack",
        &["--frame-ms", frame_ms],
        &Launch {
            env: jack.env(),
            own_channels: false,
        },
    );
    jack.connect("metro:240_bpm", "monmix_in:in_0");
    let ana = Ws::channel_0_left(&server.ws_url(), "Ana").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    (dir, server, ana)
}

/// Records the metronome and monmix's two outputs for `secs` s; (click, left, right)
/// after the first 0.5 s.
fn record_click_and_outputs(jack: &Jack, path: &Path, secs: u32) -> [Vec<f32>; 3] {
    let pcm = jack.record(
        path,
        secs,
        &["metro:240_bpm", "monmix_out:out_0", "monmix_out:out_1"],
    );
    assert!(
        pcm.len() >= 3 * 48_000 * (secs as usize - 1),
        "recorded {} samples",
        pcm.len()
    );
    let skip = 3 * 24_000;
    [0, 1, 2].map(|c| channel(&pcm[skip..], 3, c))
}

/// One clock, no Opus: the click on the left output at the metronome's level, the right
/// output silent.
fn assert_click_left(when: &str, [click, l, r]: &[Vec<f32>; 3]) {
    let click_db = tone_level_dbfs(click, CLICK_HZ);
    assert!(
        click_db > -40.0,
        "{when}: the metronome is not recorded: {click_db:.1} dBFS"
    );
    assert_level(
        &format!("{when}: click on out 1 (left)"),
        tone_level_dbfs(l, CLICK_HZ),
        click_db,
        0.5,
    );
    assert_absent(
        &format!("{when}: click on out 2 (right)"),
        tone_level_dbfs(r, CLICK_HZ),
        -90.0,
    );
}

/// One run at `frame_ms` with a JACK period of `period`; false when jackd is missing.
async fn through_jack(frame_ms: &str, period: usize) -> bool {
    let Some(mut jack) = Jack::start(period) else {
        return false;
    };
    let listed = Command::new(env!("CARGO_BIN_EXE_monmix"))
        .arg("devices")
        .envs(jack.env())
        .output()
        .expect("monmix devices");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.matches("jack: up to 64 channels, 48000 Hz").count() == 2,
        "`monmix devices` should list the JACK server as an input and an output:\n{listed}"
    );
    let (dir, server, _ana) = serve_on_jack(&mut jack, frame_ms).await;
    let log = std::fs::read_to_string(&server.stderr_log).unwrap_or_default();
    assert!(
        log.contains("the input's clock"),
        "a JACK output beside a JACK input must share its clock:\n{log}"
    );

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let rec = record_click_and_outputs(&jack, &dir.path().join("rec.wav"), 4);
    assert_click_left("through JACK", &rec);
    let [click, l, _] = rec;

    // Bursts: onsets after 100 ms of quiet.
    let (a, b) = (onsets(&click, 0.03, 4_800), onsets(&l, 0.03, 4_800));
    let timed = matched(&a, &b, 6_000);
    assert!(timed.len() >= 8, "bursts in {a:?} / out {b:?}");
    let delays = report("jack_latency", frame_ms, &timed, &load);
    // One clock: the latency does not wander (a period of tolerance for an xrun). Judged
    // on 80 % of the bursts: the metronome's soft attack now and then crosses the onset
    // threshold a cycle apart on the two sides (seen: one burst at 0 ms among 5 ms ones).
    let median = delays[delays.len() / 2];
    let steady = delays
        .iter()
        .filter(|&&d| d.abs_diff(median) <= period + 144)
        .count();
    assert!(
        steady * 5 >= delays.len() * 4,
        "latency wanders: {delays:?}"
    );
    let m = metrics(server.addr).await;
    assert_eq!(
        must(&m, "monmix_output_routed{output=\"1\",device=\"jack\"}"),
        1.0
    );
    eprintln!(
        "jack: output underruns {}, engine underruns {}, input drops {}",
        must(
            &m,
            "monmix_output_underruns_total{output=\"1\",device=\"jack\"}"
        ),
        must(&m, "monmix_engine_underruns_total"),
        must(&m, "monmix_input_dropped_total"),
    );
    server.kill9();
    true
}

/// jackd dies in the middle of a gig and comes back (issue 14, "an output device that
/// vanishes is reopened like an input"): the engine keeps its clock on silence, monmix
/// starts no JACK server of its own, and once jackd is back its input and output clients
/// reappear by themselves and the click plays again, each reconnect counted.
///
/// Not in `make test`: under load (two busy loops) one run in eight hung in libjack's
/// teardown of the dead server's clients (neither supervisor got past dropping its
/// stream), and before `jack_gate` one crashed. Run it with
/// `cargo test --test solo -- --ignored jack_heals`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "one run in eight hangs in libjack's teardown under load; run by hand"]
async fn jack_heals_when_jackd_dies_and_returns() {
    let _solo = crate::solo();
    let Some(mut jack) = Jack::start(480) else {
        return;
    };
    let (dir, server, _ana) = serve_on_jack(&mut jack, "10").await;
    let rec = record_click_and_outputs(&jack, &dir.path().join("before.wav"), 3);
    assert_click_left("before jackd dies", &rec);

    jack.stop_all();
    let mut server = server;
    let log_path = server.stderr_log.clone();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Ok(Some(status)) = server.child.try_wait() {
        panic!("monmix exited ({status}) when jackd went away:\n{}", log());
    }
    let ticks = || async { must(&metrics(server.addr).await, "monmix_engine_ticks_total") };
    let t0 = ticks().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let down = ticks().await - t0;
    assert!(
        down >= 250.0,
        "the engine stalled while jackd was down: {down} ticks in 3 s at 10 ms frames\n{}",
        log()
    );
    assert!(
        !jack.tool("jack_lsp", &[]),
        "a JACK server answers while ours is down: monmix must not start one"
    );

    jack.start_server();
    assert!(
        jack.wait_ports(
            &["monmix_in:in_0", "monmix_out:out_0"],
            Duration::from_secs(15)
        ),
        "monmix's JACK clients did not come back within 15 s of jackd:\n{}",
        log()
    );
    jack.metronome();
    jack.connect("metro:240_bpm", "monmix_in:in_0");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let rec = record_click_and_outputs(&jack, &dir.path().join("after.wav"), 3);
    assert_click_left("after jackd came back", &rec);

    for line in log().lines().filter(|l| l.contains("back after")) {
        eprintln!("jack heal: {line}");
    }
    let m = metrics(server.addr).await;
    assert!(must(&m, "monmix_input_reconnects_total") >= 1.0);
    assert!(
        must(
            &m,
            "monmix_output_reconnects_total{output=\"1\",device=\"jack\"}"
        ) >= 1.0
    );
    server.kill9();
}
