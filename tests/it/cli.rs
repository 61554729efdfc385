//! The `monmix` command line: clear one-line errors, state show/import, serve + SIGTERM.

use crate::common;

use std::process::Command;

use common::Server;

fn monmix(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_monmix"))
        .args(args)
        .env("MONMIX_LOG", "error")
        .output()
        .expect("run monmix")
}

#[test]
fn bad_arguments_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.json");
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "serve",
                "--input",
                "walkman",
                "--state",
                state.to_str().unwrap(),
            ],
            "walkman",
        ),
        (
            &[
                "serve",
                "--frame-ms",
                "7",
                "--state",
                state.to_str().unwrap(),
            ],
            "frame_ms",
        ),
        (
            &["serve", "--config", "/nonexistent/monmix.toml"],
            "/nonexistent/monmix.toml",
        ),
        (
            &[
                "serve",
                "--input",
                "file:/nonexistent.wav",
                "--state",
                state.to_str().unwrap(),
                "--http",
                "127.0.0.1:0",
            ],
            "/nonexistent.wav",
        ),
    ];
    for (args, needle) in cases {
        let out = monmix(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: expected one line, got:\n{err}");
        assert!(lines[0].starts_with("monmix: "), "{err}");
        assert!(lines[0].contains(needle), "{args:?}: {err}");
    }
    assert!(
        !state.exists(),
        "a failed start must not create a state file"
    );
}

#[test]
fn state_import_then_show_keeps_the_seed_mixes_and_hides_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/seed_channels_state.json"
    );
    let out = monmix(&[
        "state",
        "import",
        fixture,
        "--state",
        state.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2 client(s)"));

    let out = monmix(&["state", "show", "--state", state.to_str().unwrap()]);
    assert!(out.status.success());
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = &shown["channels_state"]["web-abc123"];
    assert_eq!(a["channels"], serde_json::json!([0, 1, 2]));
    assert_eq!(a["gains"]["1"], 0.8);
    assert_eq!(a["pans"]["2"], 0.25);
    assert_eq!(a["mutes"]["2"], true);
    assert_eq!(shown["format_version"], 1);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("token_hash"));

    // The imported clients are served after a start.
    let server = Server::start(dir.path(), &[]);
    let state_now = server.state_json();
    assert_eq!(
        state_now["channels_state"]["web-def456"]["channels"],
        serde_json::json!([3, 4, 5, 6, 7])
    );
    assert_eq!(server.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_cleanly_on_sigterm_and_metrics_count_ticks() {
    use common::whep_listener::http_request;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let body = common::churn::metrics(server.addr).await;
    let ticks = common::churn::must(&body, "monmix_engine_ticks_total");
    assert!(
        ticks >= 10.0,
        "engine ticked only {ticks} times in 300 ms:\n{body}"
    );
    let status = http_request(
        "GET",
        &format!("http://{}/api/status", server.addr),
        None,
        None,
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("GET /api/status")
    .body;
    assert!(status.contains("\"Kick\""), "{status}");
    let log_path = server.stderr_log.clone();
    assert_eq!(server.terminate(), Some(0));
    assert!(
        dir.path().join("state.json").exists(),
        "state written on shutdown"
    );
    // stderr is a file here, not a terminal: log lines carry no colour codes.
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\u{1b}'), "ANSI codes in the log: {log:?}");
}

#[test]
fn devices_lists_or_says_there_are_none() {
    let out = monmix(&["devices"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Both sides, each with its devices or a line saying there are none.
    let text = String::from_utf8_lossy(&out.stdout);
    let (inputs, outputs) = text.split_once("outputs:").expect("an outputs section");
    assert!(inputs.starts_with("inputs:\n  "), "{text}");
    assert!(outputs.starts_with("\n  "), "{text}");
}

#[test]
fn help_names_every_command_and_logs_carry_no_colour_codes() {
    let out = monmix(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for (cmd, text) in [
        ("serve", "Run the server"),
        ("devices", "List audio input and output devices"),
        ("discover", "List monmix servers announced on the LAN"),
        ("state", "Inspect or import the stored client mixes"),
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{cmd} ")))
            .unwrap_or_else(|| panic!("no {cmd} in\n{help}"));
        assert!(line.contains(text), "{cmd}: {line:?}");
    }
    // An invalid value: one line naming the field, and no server.
    let out = monmix(&["serve", "--frame-ms", "7", "--no-mdns"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("audio.frame_ms"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
