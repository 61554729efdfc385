//! The `monmix` command: parses the CLI and hands over to the library. Errors end here as
//! one clear line and a non-zero exit code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use monmix::config::Config;

#[derive(Parser)]
#[command(
    name = "monmix",
    version,
    about = "Personal monitor mixes for a whole band"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server: inputs, engine, web page, control.
    Serve(ServeArgs),
    /// List audio input and output devices with their channel counts and sample rates.
    Devices,
    /// List monmix servers announced on the LAN (mDNS), then exit.
    Discover {
        /// Seconds to listen.
        #[arg(long, default_value_t = 3.0)]
        timeout: f64,
        /// Service type to browse (repeatable); default _monmix._tcp.
        #[arg(long = "service")]
        services: Vec<String>,
        /// Print each service as it is resolved or removed, as it happens.
        #[arg(long)]
        events: bool,
    },
    /// Inspect or import the stored client mixes.
    State {
        #[command(subcommand)]
        cmd: StateCmd,
        /// TOML config file (for the state path and channel count).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// State file (overrides the config).
        #[arg(long, global = true)]
        state: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML config file (see config/monmix.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// demo | tones | file:PATH | device[:NAME]
    #[arg(long)]
    input: Option<String>,
    /// Input channel count (0 = what the input provides).
    #[arg(long)]
    channels: Option<usize>,
    /// HTTP listen address, e.g. 0.0.0.0:8080.
    #[arg(long)]
    http: Option<SocketAddr>,
    /// OSC listen address, e.g. 0.0.0.0:9000.
    #[arg(long)]
    osc: Option<SocketAddr>,
    /// State file path.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Engine frame length in ms: 2.5, 5, 10 or 20.
    #[arg(long)]
    frame_ms: Option<f32>,
    /// Do not print the join QR code.
    #[arg(long)]
    no_qr: bool,
    /// Do not announce the server on the LAN (mDNS).
    #[arg(long)]
    no_mdns: bool,
    /// HTTPS listen address beside HTTP, e.g. 0.0.0.0:8443 (`[tls] https`).
    #[arg(long)]
    https: Option<SocketAddr>,
    /// Serve HTTPS with a certificate made here once, kept beside the state file
    /// (`[tls] self_signed`).
    #[arg(long)]
    tls_self_signed: bool,
}

#[derive(Subcommand)]
enum StateCmd {
    /// Print the stored state (tokens are never printed).
    Show,
    /// Merge a Fichatech `channels_state.json` (or a monmix state.json) into the state file.
    Import { file: PathBuf },
}

fn load_config(path: Option<&PathBuf>) -> Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    })
}

fn serve(args: ServeArgs) -> Result<()> {
    let mut cfg = load_config(args.config.as_ref())?;
    if let Some(v) = args.input {
        cfg.audio.input = v;
    }
    if let Some(v) = args.channels {
        cfg.audio.channels = v;
    }
    if let Some(v) = args.http {
        cfg.server.http = v;
    }
    if let Some(v) = args.osc {
        cfg.server.osc = v;
    }
    if let Some(v) = args.state {
        cfg.state.path = v;
    }
    if let Some(v) = args.frame_ms {
        cfg.audio.frame_ms = v;
    }
    if args.no_mdns {
        cfg.mdns.enabled = false;
    }
    if let Some(v) = args.https {
        cfg.tls.https = Some(v);
    }
    if args.tls_self_signed {
        cfg.tls.self_signed = true;
    }
    cfg.validate()?;
    // Before any thread: the environment is not thread-safe.
    monmix::audio::device::pipewire::prepare_env(cfg.frame_len());
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let server = monmix::server::Server::start(cfg).await?;
        let url = server.join_url();
        println!("monmix listening on http://{}/", server.http_addr());
        if let Some(a) = server.https_addr() {
            println!("monmix https on https://{a}/");
        }
        if let Some(osc) = server.osc_addr() {
            println!("monmix osc on udp://{osc}");
        }
        println!("Join from a phone on this network: {url}");
        if !args.no_qr {
            if let Some(qr) = monmix::server::qr_terminal(&url) {
                println!("{qr}");
            }
        }
        server.run_until(monmix::server::shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

/// Every phone costs a few descriptors (HTTP, WebSocket; WebRTC shares the shards' UDP sockets): the
/// usual soft limit of 1024 would run out before `server.max_connections` does. Raise the
/// soft limit to the hard one, as servers do; a failure only means the old limit stays.
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!("open file limit {n}"),
        Err(e) => tracing::warn!("cannot raise the open file limit: {e}"),
    }
}

fn state_cmd(cmd: StateCmd, config: Option<PathBuf>, state: Option<PathBuf>) -> Result<()> {
    let cfg = load_config(config.as_ref())?;
    let path = state.unwrap_or(cfg.state.path.clone());
    match cmd {
        StateCmd::Show => {
            let text = monmix::server::show_state(&path)?;
            println!("{text}");
        }
        StateCmd::Import { file } => {
            let n = monmix::server::import_state(&cfg, &path, &file)?;
            println!(
                "imported {n} client(s) from {} into {}",
                file.display(),
                path.display()
            );
        }
    }
    Ok(())
}

fn discover(timeout: f64, services: Vec<String>, events: bool) -> Result<()> {
    use std::io::Write as _;
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0) {
        anyhow::bail!("--timeout {timeout}: expected seconds in (0, 3600]");
    }
    let types: Vec<String> = if services.is_empty() {
        vec![monmix::discovery::SERVICE_MONMIX.to_string()]
    } else {
        services
            .into_iter()
            .map(|s| {
                let s = s
                    .trim_end_matches('.')
                    .trim_end_matches(".local")
                    .to_string();
                format!("{s}.local.")
            })
            .collect()
    };
    let refs: Vec<&str> = types.iter().map(String::as_str).collect();
    let line = |f: &monmix::discovery::Found| {
        let txt: Vec<String> = f.txt.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "{}\t{}\thost={}\tport={}\t{}",
            f.fullname,
            f.urls().join(" "),
            f.host,
            f.port,
            txt.join(" ")
        )
    };
    let found =
        monmix::discovery::browse(&refs, std::time::Duration::from_secs_f64(timeout), |seen| {
            if events {
                match seen {
                    monmix::discovery::Seen::Resolved(f) => println!("resolved\t{}", line(f)),
                    monmix::discovery::Seen::Removed { fullname, .. } => {
                        println!("removed\t{fullname}")
                    }
                }
                let _ = std::io::stdout().flush();
            }
        })?;
    if !events {
        if found.is_empty() {
            println!("no monmix server found in {timeout} s");
        }
        for f in &found {
            println!("{}", line(f));
        }
    }
    Ok(())
}

fn devices() -> Result<()> {
    let sides = [
        (
            "inputs",
            monmix::audio::device::list_devices()?,
            "no audio input devices found (monmix serve falls back to the demo input)",
        ),
        (
            "outputs",
            monmix::audio::device::list_output_devices()?,
            "no audio output devices found",
        ),
    ];
    for (title, list, none) in sides {
        println!("{title}:");
        if list.is_empty() {
            println!("  {none}");
        }
        for d in list {
            let rates: Vec<String> = d.sample_rates.iter().map(|r| r.to_string()).collect();
            println!(
                "  {}{}: up to {} channels, {} Hz",
                d.name,
                if d.is_default { " (default)" } else { "" },
                d.channels_max,
                if rates.is_empty() {
                    "?".to_string()
                } else {
                    rates.join("/")
                }
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MONMIX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into journald or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Serve(a) => serve(a),
        Cmd::Devices => devices(),
        Cmd::Discover {
            timeout,
            services,
            events,
        } => discover(timeout, services, events),
        Cmd::State { cmd, config, state } => state_cmd(cmd, config, state),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("monmix: {e:#}");
            ExitCode::FAILURE
        }
    }
}
