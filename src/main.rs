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
    /// List audio input devices with their channel counts and sample rates.
    Devices,
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
    cfg.validate()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let server = monmix::server::Server::start(cfg).await?;
        let url = server.join_url();
        println!("monmix listening on http://{}/", server.http_addr());
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

fn devices() -> Result<()> {
    let list = monmix::audio::device::list_devices()?;
    if list.is_empty() {
        println!("no audio input devices found (monmix serve falls back to the demo input)");
    }
    for d in list {
        let rates: Vec<String> = d.sample_rates.iter().map(|r| r.to_string()).collect();
        println!(
            "{}{}: up to {} channels, {} Hz",
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
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MONMIX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Serve(a) => serve(a),
        Cmd::Devices => devices(),
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
