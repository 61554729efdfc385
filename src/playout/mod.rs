//! Mixes out to the interface's outputs (wired in-ears): `[[output]]` in the config.
//!
//! - `core`: the real-time playout of one mix (clock bridging, resampling, pre-roll);
//! - `device`: one output device's stream, its routes and the supervisor that reopens it;
//! - here: opening the devices the config names, and the router, a control thread that
//!   follows each route's `mix` (a client by name, id or position, or the engineer's cue)
//!   and hands the callback a tap of that mix. A routed mix is rendered every tick by the
//!   engine, whether or not anyone listens over WHEP, because the route holds a tap.

pub mod core;
pub mod device;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::config::{OutputClock, OutputConfig};
use crate::engine::EngineHandle;
use crate::state::Store;
use core::{ClockMode, PlayoutStats};
use device::{DeviceStats, RouteControl};

/// How often the router looks at the clients (a client appearing, renamed, reordered).
const ROUTER_PERIOD: Duration = Duration::from_millis(200);
/// No engineer cue: the `cue` routes play silence.
pub const NO_CUE: usize = usize::MAX;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlayoutError {
    #[error("output device {name:?} not found; outputs: {available}")]
    NoDevice { name: String, available: String },
    #[error("output device {name:?}: {problem}")]
    Device { name: String, problem: String },
    #[error("output device {name:?} has {max} channels, channel {channel} is routed")]
    Channels {
        name: String,
        channel: u16,
        max: u16,
    },
    /// One of the above, naming the config entry it came from.
    #[error("output[{index}].{field}: {source}")]
    Entry {
        index: usize,
        field: &'static str,
        source: Box<PlayoutError>,
    },
    #[error("cannot start a thread: {0}")]
    Spawn(#[from] std::io::Error),
}

/// What `/metrics` and the engineer see of one `[[output]]`.
pub struct OutputStatus {
    /// 1-based, as in the config.
    pub index: usize,
    pub device: String,
    pub channels: Vec<u16>,
    pub mix: String,
    pub stats: Arc<PlayoutStats>,
    pub device_stats: Arc<DeviceStats>,
    /// True while a mix is routed (the named client exists and has a slot).
    pub routed: Arc<AtomicBool>,
}

/// The running outputs; dropping it stops the router and every device.
pub struct Outputs {
    pub status: Vec<OutputStatus>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Outputs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One `/metrics` family of the outputs: name, kind, help, and how to read it.
type MetricRow = (
    &'static str,
    crate::metrics::Kind,
    &'static str,
    fn(&OutputStatus) -> i64,
);

impl Outputs {
    /// `/metrics`: per output, labelled by its 1-based index and device.
    pub fn render_metrics(&self, out: &mut crate::metrics::PromText) {
        use crate::metrics::Kind::{Counter, Gauge};
        let rows: [MetricRow; 8] = [
            (
                "output_routed",
                Gauge,
                "1 while the output's mix exists and plays, 0 while it waits for it.",
                |s| i64::from(s.routed.load(Ordering::Relaxed)),
            ),
            (
                "output_open",
                Gauge,
                "1 while the output's device stream runs.",
                |s| i64::from(s.device_stats.open.load(Ordering::Relaxed)),
            ),
            (
                "output_underruns_total",
                Counter,
                "Callbacks that played silence for want of a mix frame.",
                |s| s.stats.underruns.load(Ordering::Relaxed) as i64,
            ),
            (
                "output_dropped_total",
                Counter,
                "Mix frames skipped to shed excess output latency.",
                |s| s.stats.dropped.load(Ordering::Relaxed) as i64,
            ),
            (
                "output_fill_samples",
                Gauge,
                "Audio buffered for the output, in 48 kHz samples.",
                |s| s.stats.fill_samples.load(Ordering::Relaxed) as i64,
            ),
            (
                "output_ratio_ppm",
                Gauge,
                "Clock correction of the output's resampler, in ppm.",
                |s| s.stats.ratio_ppm.load(Ordering::Relaxed),
            ),
            (
                "output_device_delay_samples",
                Gauge,
                "Driver-reported delay from the output's callback to its speaker, in device samples.",
                |s| s.device_stats.delay_samples.load(Ordering::Relaxed) as i64,
            ),
            (
                "output_reconnects_total",
                Counter,
                "Times the output's device was opened again after it was lost.",
                |s| s.device_stats.reconnects.load(Ordering::Relaxed) as i64,
            ),
        ];
        for (name, kind, help, get) in rows {
            out.family(name, kind, help);
            for s in &self.status {
                let idx = s.index.to_string();
                out.sample(name, &[("output", &idx), ("device", &s.device)], get(s));
            }
        }
    }
}

/// How a route names its mix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MixRef {
    Cue,
    Client(String),
    /// Unassigned: silence.
    Nothing,
}

impl From<Option<&str>> for MixRef {
    fn from(m: Option<&str>) -> Self {
        match m {
            Some(m) if m.eq_ignore_ascii_case("cue") => MixRef::Cue,
            Some(m) => MixRef::Client(m.to_string()),
            None => MixRef::Nothing,
        }
    }
}

impl std::fmt::Display for MixRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MixRef::Cue => f.write_str("the engineer's cue"),
            MixRef::Client(c) => write!(f, "{c:?}"),
            MixRef::Nothing => f.write_str("nothing"),
        }
    }
}

struct RouterEntry {
    index: usize,
    cfg: OutputConfig,
    /// What it plays now (engineer's assignment over the config's `mix`).
    mix: MixRef,
    control: RouteControl,
    current: Option<usize>,
    routed: Arc<AtomicBool>,
    /// A change waiting for room in the callback's queue.
    pending: bool,
}

/// The client `name` names: its id, its name (any case), or its 1-based position.
pub fn find_client<'c>(
    name: &str,
    clients: &'c [crate::state::ClientInfo],
) -> Option<&'c crate::state::ClientInfo> {
    clients
        .iter()
        .find(|c| c.id == name)
        .or_else(|| clients.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
        .or_else(|| {
            name.parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| clients.get(i))
        })
}

/// The slot of the client `name` names.
fn resolve(name: &str, clients: &[crate::state::ClientInfo]) -> Option<usize> {
    find_client(name, clients)?.slot
}

/// What output `cfg` plays now: the engineer's assignment in `assigned` (by the output's
/// key; `None` inside = nothing), else the config's `mix` (empty = nothing).
pub fn effective_mix<'a>(
    cfg: &'a OutputConfig,
    assigned: &'a BTreeMap<String, Option<String>>,
) -> Option<&'a str> {
    match assigned.get(&cfg.key()) {
        Some(a) => a.as_deref(),
        None => Some(cfg.mix.as_str()).filter(|m| !m.is_empty()),
    }
}

impl Outputs {
    /// Opens every configured output device (an unknown device or a channel beyond the
    /// device's is an error: the server does not start) and starts the router.
    /// `same_clock(device)` says whether a device shares the input's clock.
    pub fn start(
        cfgs: &[OutputConfig],
        frame_len: usize,
        engine: EngineHandle,
        store: Arc<Store>,
        cue: Arc<AtomicUsize>,
        same_clock: impl Fn(&str) -> bool,
    ) -> Result<Outputs, PlayoutError> {
        // Built first: an error part-way drops it, which stops and joins the devices
        // already started.
        let mut outputs = Outputs {
            status: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };
        let stop = outputs.stop.clone();
        let mut entries = Vec::new();
        let host = cpal::default_host();
        // One stream per device, with all its routes.
        let mut by_device: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, o) in cfgs.iter().enumerate() {
            by_device.entry(o.device.as_str()).or_default().push(i);
        }
        for (name, idxs) in by_device {
            let entry = |field, e| PlayoutError::Entry {
                index: idxs[0] + 1,
                field,
                source: Box::new(e),
            };
            let device = device::find(&host, name).map_err(|e| entry("device", e))?;
            let (widest, needed) = idxs
                .iter()
                .flat_map(|&i| cfgs[i].channels.iter().map(move |&c| (i, c)))
                .max_by_key(|(_, c)| *c)
                .unwrap_or((idxs[0], 1));
            let plan = device::plan(&device, name, needed, frame_len).map_err(|e| match e {
                PlayoutError::Channels { .. } => PlayoutError::Entry {
                    index: widest + 1,
                    field: "channels",
                    source: Box::new(e),
                },
                e => entry("device", e),
            })?;
            drop(device);
            let asked = idxs
                .iter()
                .map(|&i| cfgs[i].clock)
                .find(|c| *c != OutputClock::Auto)
                .unwrap_or(OutputClock::Auto);
            let shared = match asked {
                OutputClock::Shared => true,
                OutputClock::Adaptive => false,
                OutputClock::Auto => same_clock(name),
            };
            let mode = if shared && plan.rate == crate::limits::SAMPLE_RATE {
                ClockMode::Shared
            } else {
                ClockMode::Adaptive
            };
            let dstats = Arc::new(DeviceStats::default());
            let mut routes = Vec::new();
            for &i in &idxs {
                let o = &cfgs[i];
                let (route, control) = device::route(frame_len, plan.rate, mode, &o.channels)
                    .map_err(|problem| PlayoutError::Device {
                        name: name.to_string(),
                        problem,
                    })?;
                routes.push(route);
                let routed = Arc::new(AtomicBool::new(false));
                outputs.status.push(OutputStatus {
                    index: i + 1,
                    device: o.device.clone(),
                    channels: o.channels.clone(),
                    mix: o.mix.clone(),
                    stats: control.stats.clone(),
                    device_stats: dstats.clone(),
                    routed: routed.clone(),
                });
                entries.push(RouterEntry {
                    index: i + 1,
                    cfg: o.clone(),
                    mix: MixRef::Nothing,
                    control,
                    current: None,
                    routed,
                    // The first pass sends silence and says what the route waits for.
                    pending: true,
                });
            }
            let (first_tx, first_rx) = mpsc::sync_channel(1);
            let (stop_t, dstats_t) = (stop.clone(), dstats.clone());
            let plan_t = plan.clone();
            let t = std::thread::Builder::new()
                .name("output-device".into())
                .spawn(move || {
                    device::supervise(plan_t, Some(routes), dstats_t, stop_t, first_tx)
                })?;
            outputs.threads.push(t);
            let opened = first_rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| {
                    Err("the playback stream did not start within 10 s".to_string())
                });
            match opened {
                Ok(desc) => tracing::info!(
                    "{desc}, {} clock, {} route(s)",
                    if mode == ClockMode::Shared {
                        "the input's"
                    } else {
                        "its own (adaptive resampling)"
                    },
                    idxs.len()
                ),
                Err(problem) => {
                    return Err(entry(
                        "device",
                        PlayoutError::Device {
                            name: name.to_string(),
                            problem,
                        },
                    ))
                }
            }
        }
        outputs.status.sort_by_key(|s| s.index);
        if !entries.is_empty() {
            outputs.threads.push(
                std::thread::Builder::new()
                    .name("output-router".into())
                    .spawn(move || route_loop(entries, engine, store, cue, stop))?,
            );
        }
        Ok(outputs)
    }
}

/// The router: every [`ROUTER_PERIOD`], points each route at the slot its mix names now.
fn route_loop(
    mut entries: Vec<RouterEntry>,
    engine: EngineHandle,
    store: Arc<Store>,
    cue: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let clients = store.clients();
        let assigned = store.output_assignments();
        let cue_slot = cue.load(Ordering::Relaxed);
        for e in &mut entries {
            e.control.collect();
            let mix = MixRef::from(effective_mix(&e.cfg, &assigned));
            if mix != e.mix {
                tracing::info!("output {}: assigned {mix}", e.index);
                e.mix = mix;
                // Say what it waits for, even when the slot stays the same.
                e.pending = true;
            }
            let want = match &e.mix {
                MixRef::Cue => (cue_slot != NO_CUE).then_some(cue_slot),
                MixRef::Client(name) => resolve(name, &clients),
                MixRef::Nothing => None,
            };
            if want == e.current && !e.pending {
                continue;
            }
            let source = match want {
                Some(slot) => match engine.attach(slot) {
                    Ok(tap) => Some(tap.into_reader()),
                    Err(err) => {
                        tracing::warn!("output {}: cannot listen to the mix: {err}", e.index);
                        continue;
                    }
                },
                None => None,
            };
            if !e.control.send(source) {
                e.pending = true;
                continue;
            }
            e.pending = false;
            match (&e.mix, want) {
                (MixRef::Client(name), None) => tracing::warn!(
                    "output {}: no client {name:?} yet (or no mix slot): silence until one appears",
                    e.index
                ),
                (MixRef::Cue, None) => {
                    tracing::info!("output {}: the engineer cues nothing: silence", e.index)
                }
                (MixRef::Nothing, _) => {
                    tracing::info!("output {}: no mix assigned: silence", e.index)
                }
                (_, Some(slot)) => tracing::info!("output {}: now plays mix slot {slot}", e.index),
            }
            e.current = want;
            e.routed.store(want.is_some(), Ordering::Relaxed);
        }
        std::thread::sleep(ROUTER_PERIOD);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{ClientInfo, DeviceRecord};

    fn client(id: &str, name: &str, slot: Option<usize>) -> ClientInfo {
        ClientInfo {
            id: id.into(),
            name: name.into(),
            slot,
            device: DeviceRecord::default(),
        }
    }

    #[test]
    fn a_mix_is_named_by_id_name_or_position() {
        let cs = [
            client("c-1", "Ana", Some(4)),
            client("c-2", "Luis", Some(7)),
        ];
        assert_eq!(resolve("c-2", &cs), Some(7));
        assert_eq!(resolve("ana", &cs), Some(4));
        assert_eq!(resolve("2", &cs), Some(7));
        assert_eq!(resolve("3", &cs), None);
        assert_eq!(resolve("0", &cs), None);
        assert_eq!(resolve("Nobody", &cs), None);
        let no_slot = [client("c-3", "Eva", None)];
        assert_eq!(resolve("Eva", &no_slot), None);
    }
}
