//! The axum router: web pages, `/api/status`, `/metrics`, `/ws`, `/whep`; every route
//! behind the [`guard`] (Host check, request deadline), served by [`serve`] (connection
//! bounds, header timeout).

pub mod guard;
pub mod serve;

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;

use crate::audio::InputStats;
use crate::config::Config;
use crate::engine::EngineHandle;
use crate::state::Store;

/// Everything a request handler may need; shared read-only (the store has its own lock).
pub struct AppState {
    pub config: Config,
    pub channel_names: Vec<String>,
    pub input_description: String,
    pub input_stats: Arc<InputStats>,
    pub store: Arc<Store>,
    pub engine: EngineHandle,
    /// Listener sessions, Opus encoders, packet fan-out.
    pub stream: crate::stream::StreamService,
    /// WebSocket sessions' shared book-keeping.
    pub hub: Arc<crate::control::session::Hub>,
    /// Cancelled on shutdown; long-lived tasks (WebSocket sessions) listen to it.
    pub shutdown: CancellationToken,
    /// OSC counters, when OSC is on.
    pub osc_stats: Option<Arc<crate::control::osc::OscStats>>,
    /// The URL phones should open (shown as a QR code on the engineer page): the https
    /// one when HTTPS is on.
    pub join_url: String,
    /// The HTTPS URL, when `[tls] https` is set (the page points plain-http users to it).
    pub https_url: Option<String>,
    /// The HTTPS certificate as PEM, offered at `/cert.pem` so a phone can trust it.
    pub cert_pem: Option<String>,
    /// HTTP connection counters (filled by [`serve::serve`]).
    pub conn_stats: Arc<serve::ConnStats>,
    /// `[[output]]`s: mixes on the interface's outputs.
    pub outputs: crate::playout::Outputs,
}

pub fn router(app: Arc<AppState>) -> Router {
    let whep = crate::stream::whep::router(app.stream.clone(), app.hub.clone());
    let guard = Arc::new(guard::Guard::new(
        &app.config.mdns.host_name,
        &app.config.security.allowed_hosts,
        std::time::Duration::from_secs_f64(app.config.server.request_timeout_secs),
    ));
    Router::new()
        .route("/", get(web_index))
        .route("/status", get(index))
        .route("/engineer", get(web_engineer))
        .route("/api/join.svg", get(join_svg))
        .route("/api/status", get(status))
        .route("/api/taper", get(taper))
        .route("/cert.pem", get(cert_pem))
        .route("/metrics", get(metrics))
        .fallback(get(web_asset))
        // Pages, scripts and the API go out gzip/br where the browser asks (a phone on a
        // busy stage Wi-Fi loads the page in a third of the bytes). Added before `/ws`
        // and `/whep` on purpose: `layer` wraps only the routes above it, and neither an
        // upgrade nor an SDP answer gains from it.
        .layer(CompressionLayer::new())
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/ws",
            get(crate::control::ws::handler).with_state(Arc::new(crate::control::ws::WsContext {
                hub: app.hub.clone(),
                meters: app.engine.meters().clone(),
                shutdown: app.shutdown.clone(),
            })),
        )
        .with_state(app)
        .merge(whep)
        .layer(axum::middleware::from_fn_with_state(guard, guard::guard))
}

#[derive(Serialize)]
struct ChannelInfo<'a> {
    index: usize,
    name: &'a str,
}

#[derive(Serialize)]
struct Status<'a> {
    name: &'a str,
    version: &'static str,
    input: &'a str,
    sample_rate: u32,
    frame_ms: f32,
    channels: Vec<ChannelInfo<'a>>,
    clients: usize,
    join_url: &'a str,
    /// Where the page is a secure context (service worker, wake lock), if HTTPS is on.
    https_url: Option<&'a str>,
}

fn status_of(app: &AppState) -> Status<'_> {
    Status {
        name: &app.config.server.name,
        version: env!("CARGO_PKG_VERSION"),
        input: &app.input_description,
        sample_rate: crate::audio::SAMPLE_RATE,
        frame_ms: app.config.audio.frame_ms,
        channels: app
            .channel_names
            .iter()
            .enumerate()
            .map(|(index, name)| ChannelInfo { index, name })
            .collect(),
        clients: app.store.clients().len(),
        join_url: &app.join_url,
        https_url: app.https_url.as_deref(),
    }
}

/// The HTTPS certificate, for a phone to install and trust (README, "HTTPS on the stage
/// network"). The CA-certificate type makes iOS and Android offer to install it.
async fn cert_pem(State(app): State<Arc<AppState>>) -> axum::response::Response {
    match &app.cert_pem {
        Some(pem) => (
            [
                (header::CONTENT_TYPE, "application/x-x509-ca-cert"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"monmix-cert.pem\"",
                ),
            ],
            pem.clone(),
        )
            .into_response(),
        None => (axum::http::StatusCode::NOT_FOUND, "HTTPS is off\n").into_response(),
    }
}

async fn status(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    Json(serde_json::to_value(status_of(&app)).unwrap_or_default())
}

async fn index(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    let s = status_of(&app);
    let mut rows = String::new();
    for c in &s.channels {
        let _ = write!(rows, "<li>{}</li>", escape(c.name));
    }
    Html(format!(
        "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>\
         <title>{name}</title><style>body{{background:#111;color:#eee;font:16px system-ui;margin:2em}}</style>\
         <h1>{name}</h1><p>Input: {input} · {n} channels · {clients} client mix(es)</p><ol>{rows}</ol>",
        name = escape(s.name),
        input = escape(s.input),
        n = s.channels.len(),
        clients = s.clients,
    ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `GET /api/taper`: the fader curve the page draws its faders from (the OSC faders'
/// curve, [`crate::taper`]). Below the first point the gain falls linearly to 0 at 0.
async fn taper() -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "points": crate::taper::POINTS.iter().map(|&(p, db)| [p, db]).collect::<Vec<_>>(),
        "below_first": "linear_gain",
    }))
}

async fn metrics(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    use crate::metrics::{Kind, PromText};
    const COUNTER: Kind = Kind::Counter;
    const GAUGE: Kind = Kind::Gauge;
    let e = app.engine.stats().snapshot();
    let i = app.input_stats.snapshot();
    let p = app.store.persist_stats();
    let rows = [
        (
            "engine_ticks_total",
            "Engine frames processed.",
            COUNTER,
            e.ticks,
        ),
        (
            "engine_underruns_total",
            "Frames the input did not deliver in time (silence mixed).",
            COUNTER,
            e.underruns,
        ),
        (
            "engine_overruns_total",
            "Input frames skipped to keep latency bounded.",
            COUNTER,
            e.overruns,
        ),
        (
            "engine_late_ticks_total",
            "Ticks that took longer than a frame.",
            COUNTER,
            e.late_ticks,
        ),
        (
            "engine_tap_drops_total",
            "Mix frames dropped because a consumer was behind.",
            COUNTER,
            e.tap_drops,
        ),
        (
            "engine_max_tick_ns",
            "Longest engine tick.",
            GAUGE,
            e.max_tick_ns,
        ),
        (
            "input_frames_total",
            "Frames produced by the input.",
            COUNTER,
            i.frames_produced,
        ),
        (
            "input_dropped_total",
            "Input frames dropped (engine behind).",
            COUNTER,
            i.frames_dropped,
        ),
        (
            "input_reconnects_total",
            "Audio device reopen attempts that succeeded.",
            COUNTER,
            i.device_reconnects,
        ),
        (
            "input_device_delay_samples",
            "Driver-reported delay from capture to the input callback, in device samples.",
            GAUGE,
            i.device_delay_samples,
        ),
        (
            "state_writes_total",
            "Successful state file writes.",
            COUNTER,
            p.writes(),
        ),
        (
            "state_write_failures_total",
            "Failed state file writes (retried).",
            COUNTER,
            p.failures(),
        ),
        (
            "state_write_failing",
            "1 while the last state write failed (the file on disk is behind).",
            GAUGE,
            u64::from(p.failing()),
        ),
        (
            "state_write_last_us",
            "Duration of the last state write (serialize, write, fsyncs, renames).",
            GAUGE,
            p.last_write().as_micros() as u64,
        ),
        (
            "state_write_max_us",
            "Longest state write since start.",
            GAUGE,
            p.max_write().as_micros() as u64,
        ),
        (
            "http_connections_open",
            "Open HTTP connections (upgraded WebSockets are counted as sessions).",
            GAUGE,
            app.conn_stats.open.load(Ordering::Relaxed),
        ),
        (
            "http_connections_refused_total",
            "Connections closed at once because a connection cap was reached.",
            COUNTER,
            app.conn_stats.refused.load(Ordering::Relaxed),
        ),
        (
            "clients",
            "Clients with a stored mix.",
            GAUGE,
            app.store.clients().len() as u64,
        ),
        (
            "ws_sessions",
            "Open WebSocket sessions (upgrades in progress included).",
            GAUGE,
            app.hub.sessions() as u64,
        ),
    ];
    let mut out = PromText::new();
    for (name, help, kind, value) in rows {
        out.single(name, kind, help, value);
    }
    let links = app.hub.link_reports(std::time::Instant::now());
    out.family(
        "client_latency_ms",
        GAUGE,
        "Latency a listening page shows its musician (its own estimate), by client.",
    );
    for (id, l) in &links {
        out.sample("client_latency_ms", &[("client", id)], l.latency_ms);
    }
    out.family(
        "client_loss_pct",
        GAUGE,
        "Packet loss a listening page reports, in percent, by client.",
    );
    for (id, l) in &links {
        out.sample("client_loss_pct", &[("client", id)], l.loss_pct);
    }
    if let Some(o) = &app.osc_stats {
        o.render_prometheus(&mut out);
    }
    app.stream.render_metrics(&mut out);
    app.outputs.render_metrics(&mut out);
    crate::rt::render_metrics(&mut out);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        out.finish(),
    )
}

// ---- web UI (web/, embedded) -------------------------------------------------------

/// The phone and engineer pages, compiled into the binary (read from disk in debug
/// builds, so editing `web/` needs no rebuild while developing).
#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct WebAssets;

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "webmanifest" => "application/manifest+json",
        "json" => "application/json",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn serve_asset(path: &str) -> axum::response::Response {
    match WebAssets::get(path) {
        Some(file) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                // Always revalidate: the service worker keeps the offline copy.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            file.data.into_owned(),
        )
            .into_response(),
        None => (axum::http::StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn web_index() -> axum::response::Response {
    serve_asset("index.html")
}

async fn web_engineer() -> axum::response::Response {
    serve_asset("engineer.html")
}

async fn web_asset(uri: axum::http::Uri) -> axum::response::Response {
    let path = uri.path().trim_start_matches('/');
    if path.is_empty()
        || path
            .split('/')
            .any(|seg| seg.is_empty() || seg.starts_with('.'))
    {
        return (axum::http::StatusCode::NOT_FOUND, "not found").into_response();
    }
    serve_asset(path)
}

/// `GET /api/join.svg`: the join URL as a QR code.
async fn join_svg(State(app): State<Arc<AppState>>) -> axum::response::Response {
    match qrcode::QrCode::new(app.join_url.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color>()
                .min_dimensions(240, 240)
                .dark_color(qrcode::render::svg::Color("#000000"))
                .light_color(qrcode::render::svg::Color("#ffffff"))
                .quiet_zone(true)
                .build();
            (
                [
                    (header::CONTENT_TYPE, "image/svg+xml"),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                svg,
            )
                .into_response()
        }
        Err(_) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no QR code").into_response(),
    }
}
