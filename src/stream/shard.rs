//! A shard: one real-time thread that owns a set of mixes and every listener of them, and
//! takes each engine tick from mix to wire in one pass.
//!
//! ```text
//! engine tick ─unpark─▶ shard: for each mix with a frame: Opus-encode once
//!                              for each listener of it: write (RTP + SRTP, sans-IO peer)
//!                              drain every datagram into the batch ─▶ one sendmmsg
//!                       between ticks: receive (STUN, DTLS, RTCP), timeouts, lifecycle
//! ```
//!
//! Why: the old chain (clock → engine → encoder pool → a tokio task per peer → a `sendmsg`
//! per packet) had four hand-offs, none real-time, and packets left 13–22 ms apart. Here
//! the engine's tick wakes the shard once and the whole tick leaves in one system call, on a
//! SCHED_FIFO thread when the system allows it. Nothing on this path waits on a peer: a
//! peer is a state machine; a dead one just stops answering and is dropped by the
//! lifecycle rules.
//!
//! Control (WHEP open/close, in `mod.rs`) talks to a shard through a bounded lock-free
//! command queue plus an `unpark`; the shard reports ended sessions back on a channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::encoder::MixEncoder;
use super::stats::StreamStats;
use super::transport::{ConnState, OpusPacket, Peer, SendOutcome};
use super::udp::{stun_local_ufrag, Batch, Sockets, MAX_DATAGRAM};
use crate::engine::MixTap;

/// Frames of backlog a shard still sends in one pass; older ones are dropped so latency
/// stays bounded after a stall. As many as a tap holds: a device input hands the engine a
/// whole period at once (PipeWire's default quantum is two 10 ms frames, ALSA periods
/// can be longer), and those frames are fresh, not late. At 2 the shard dropped every
/// third frame of a PipeWire capture.
const MAX_BURST: usize = crate::engine::TAP_CAPACITY;
/// Wake-up period with nothing to do (the engine's tick and control commands unpark us).
const IDLE_PARK: Duration = Duration::from_millis(20);
/// Wake-up period while a peer is negotiating, so ICE/DTLS replies go out promptly.
const HANDSHAKE_PARK: Duration = Duration::from_millis(1);
/// Remote addresses a peer may be reached from (ICE may try a few before settling).
const MAX_ADDRS_PER_PEER: usize = 8;

/// Lifecycle limits of a listener.
#[derive(Clone, Copy, Debug)]
pub struct Lifecycle {
    /// A peer that has not completed ICE and DTLS by then is dropped.
    pub connect_timeout: Duration,
    /// A connected peer from which nothing (STUN consent, RTCP) arrived for this long is
    /// dropped. Firefox sends a consent check only every 4-6 s (RFC 7675's 5 s, randomised)
    /// and RTCP every 2.5-7.5 s: gaps of 4.9 s were captured, and the old 4.5 s dropped a
    /// healthy Firefox listener in one run of five. 15 s rides out two lost checks on
    /// stage Wi-Fi and still frees a phone that is gone well before RFC 7675's 30 s.
    pub vanish_timeout: Duration,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            connect_timeout: Duration::from_secs(8),
            vanish_timeout: Duration::from_secs(15),
        }
    }
}

/// Control → shard.
pub(crate) enum Command {
    /// Start encoding a mix (its first listener is on its way).
    AddMix {
        slot: usize,
        tap: MixTap,
        encoder: MixEncoder,
    },
    /// A listener of `slot`'s mix.
    AddPeer {
        key: u64,
        slot: usize,
        peer: Box<dyn Peer>,
    },
    /// End a listener (WHEP DELETE, shutdown).
    RemovePeer { key: u64 },
    /// The mix has no listener left: drop its tap (the engine stops computing it).
    RemoveMix { slot: usize },
}

/// Shard → control: listener `key` ended by itself (ICE/DTLS failure, timeout, vanished).
pub(crate) type Ended = tokio::sync::mpsc::UnboundedSender<u64>;

struct MixJob {
    slot: usize,
    tap: MixTap,
    enc: MixEncoder,
    bufs: [Vec<f32>; MAX_BURST],
    /// This tick's packets.
    packets: [Option<OpusPacket>; MAX_BURST],
    timestamp: u32,
    frame_len: u32,
    tap_drops_seen: u64,
}

struct PeerEntry {
    key: u64,
    slot: usize,
    peer: Box<dyn Peer>,
    next_timeout: Option<Instant>,
    created: Instant,
    last_rx: Instant,
    addrs: usize,
}

/// Everything one shard thread owns.
pub(crate) struct Shard {
    pub(crate) name: String,
    pub(crate) commands: rtrb::Consumer<Command>,
    pub(crate) sockets: Sockets,
    pub(crate) stats: Arc<StreamStats>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) ended: Ended,
    pub(crate) lifecycle: Lifecycle,
    mixes: Vec<MixJob>,
    /// Mix slot → index in `mixes`.
    mix_of_slot: Vec<Option<usize>>,
    peers: Vec<PeerEntry>,
    /// Remote address → peer key, learned from datagrams a peer accepted.
    by_addr: HashMap<SocketAddr, u64>,
    batch: Batch,
    rx: Box<[u8]>,
}

impl Shard {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        name: String,
        commands: rtrb::Consumer<Command>,
        sockets: Sockets,
        stats: Arc<StreamStats>,
        stop: Arc<AtomicBool>,
        ended: Ended,
        lifecycle: Lifecycle,
        max_mixes: usize,
        max_listeners: usize,
    ) -> Self {
        Shard {
            name,
            commands,
            sockets,
            stats,
            stop,
            ended,
            lifecycle,
            mixes: Vec::with_capacity(max_mixes),
            mix_of_slot: vec![None; max_mixes],
            peers: Vec::with_capacity(max_listeners),
            by_addr: HashMap::with_capacity(max_listeners * 2),
            // Room for a burst of two packets to every listener plus RTCP and handshakes.
            batch: Batch::new(max_listeners * (MAX_BURST + 2) + 64),
            rx: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
        }
    }

    /// The thread body: until `stop`, one pass per wake-up.
    pub(crate) fn run(mut self) {
        crate::rt::promote_current(&self.name, crate::rt::RtRole::Shard);
        while !self.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            let next = self.pass(now);
            let wait = next.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                std::thread::park_timeout(wait);
            }
        }
        for p in &mut self.peers {
            p.peer.close();
        }
        self.drain_all();
        self.flush();
    }

    /// One pass: commands, this tick's audio out, receives, timeouts. Returns when the next
    /// pass is due at the latest (the engine's tick usually comes first).
    pub(crate) fn pass(&mut self, now: Instant) -> Instant {
        self.apply_commands(now);
        if self.encode() {
            self.write_all(now);
            self.flush();
            self.stats.internal_latency.record(now.elapsed());
        }
        self.receive(now);
        let next = self.timeouts(now);
        self.flush();
        next
    }

    fn apply_commands(&mut self, now: Instant) {
        while let Ok(c) = self.commands.pop() {
            match c {
                Command::AddMix { slot, tap, encoder } => {
                    let Some(entry) = self.mix_of_slot.get_mut(slot) else {
                        continue;
                    };
                    if entry.is_some() {
                        continue;
                    }
                    let samples = tap.frame_samples();
                    *entry = Some(self.mixes.len());
                    self.mixes.push(MixJob {
                        slot,
                        tap_drops_seen: tap.dropped(),
                        tap,
                        enc: encoder,
                        bufs: std::array::from_fn(|_| vec![0.0; samples]),
                        packets: std::array::from_fn(|_| None),
                        timestamp: 0,
                        frame_len: (samples / 2) as u32,
                    });
                    StreamStats::add(&self.stats.active_mixes, 1);
                }
                Command::RemoveMix { slot } => {
                    if let Some(i) = self.mix_of_slot.get_mut(slot).and_then(Option::take) {
                        self.mixes.swap_remove(i);
                        if let Some(moved) = self.mixes.get(i) {
                            self.mix_of_slot[moved.slot] = Some(i);
                        }
                        StreamStats::sub(&self.stats.active_mixes, 1);
                    }
                }
                Command::AddPeer { key, slot, peer } => {
                    self.peers.push(PeerEntry {
                        key,
                        slot,
                        peer,
                        next_timeout: Some(now),
                        created: now,
                        last_rx: now,
                        addrs: 0,
                    });
                }
                Command::RemovePeer { key } => {
                    if let Some(i) = self.peers.iter().position(|p| p.key == key) {
                        self.remove_peer(i, false);
                    }
                }
            }
        }
    }

    /// Takes each mix's waiting frames and encodes them once. True if any packet was made.
    fn encode(&mut self) -> bool {
        let stats = &self.stats;
        let mut any = false;
        for job in &mut self.mixes {
            job.packets = std::array::from_fn(|_| None);
            let mut n = 0usize;
            while job.tap.try_recv(&mut job.bufs[n % MAX_BURST]) {
                n += 1;
            }
            let tap_drops = job.tap.dropped();
            let engine_dropped = tap_drops - job.tap_drops_seen;
            job.tap_drops_seen = tap_drops;
            let skipped = n.saturating_sub(MAX_BURST) as u64 + engine_dropped;
            if skipped > 0 {
                StreamStats::add(&stats.frames_dropped, skipped);
                // Keep media time true to the wall clock: the receiver conceals the gap.
                job.timestamp = job
                    .timestamp
                    .wrapping_add((skipped as u32).wrapping_mul(job.frame_len));
            }
            let first = n.saturating_sub(MAX_BURST);
            for (out, k) in (first..n).enumerate() {
                let t0 = Instant::now();
                let encoded = job.enc.encode(&job.bufs[k % MAX_BURST]);
                stats.encode_time.record(t0.elapsed());
                let ts = job.timestamp;
                job.timestamp = ts.wrapping_add(job.frame_len);
                match encoded {
                    Ok(payload) => {
                        StreamStats::add(&stats.frames_encoded, 1);
                        job.packets[out] = Some(OpusPacket {
                            payload,
                            timestamp: ts,
                            samples: job.frame_len,
                        });
                        any = true;
                    }
                    Err(_) => StreamStats::add(&stats.encode_errors, 1),
                }
            }
        }
        any
    }

    /// Writes this tick's packets to every listener and drains what they produce.
    fn write_all(&mut self, now: Instant) {
        let (mut sent, mut dropped, mut bytes) = (0u64, 0u64, 0u64);
        for e in &mut self.peers {
            let Some(Some(m)) = self.mix_of_slot.get(e.slot) else {
                continue;
            };
            let job = &self.mixes[*m];
            let mut wrote = false;
            for p in job.packets.iter().flatten() {
                match e.peer.write(now, p) {
                    SendOutcome::Sent => {
                        sent += 1;
                        bytes += p.payload.len() as u64;
                        wrote = true;
                    }
                    SendOutcome::Dropped => dropped += 1,
                    SendOutcome::NotReady => {}
                }
            }
            if wrote {
                e.next_timeout = drain(e, &self.sockets, &mut self.batch, &self.stats);
            }
        }
        StreamStats::add(&self.stats.packets_sent, sent);
        StreamStats::add(&self.stats.bytes_sent, bytes);
        if dropped > 0 {
            StreamStats::add(&self.stats.packets_dropped, dropped);
        }
    }

    /// Reads what is waiting on the sockets (bounded, so a flood cannot starve the next
    /// tick) and hands each datagram to its peer.
    fn receive(&mut self, now: Instant) {
        let budget = 64 + 4 * self.peers.len();
        let mut n = 0;
        // Taken out for the loop so a datagram can be read while peers are mutated.
        let mut rx = std::mem::take(&mut self.rx);
        for s in 0..self.sockets.len() {
            while n < budget {
                let Some((len, src, local)) = self.sockets.recv(s, &mut rx) else {
                    break;
                };
                n += 1;
                StreamStats::add(&self.stats.datagrams_received, 1);
                let data = &rx[..len];
                let Some(i) = self.find_peer(now, src, local, data) else {
                    StreamStats::add(&self.stats.datagrams_unknown, 1);
                    continue;
                };
                let e = &mut self.peers[i];
                e.last_rx = now;
                let ok = e.peer.receive(now, src, local, data).is_ok();
                if !ok {
                    StreamStats::add(&self.stats.datagrams_bad, 1);
                }
                e.next_timeout = drain(e, &self.sockets, &mut self.batch, &self.stats);
            }
        }
        self.rx = rx;
    }

    /// The peer a datagram belongs to: by remote address, else (a new address) by the STUN
    /// username's local ufrag. Learns the address when the peer accepts it.
    fn find_peer(
        &mut self,
        now: Instant,
        src: SocketAddr,
        local: SocketAddr,
        data: &[u8],
    ) -> Option<usize> {
        if let Some(key) = self.by_addr.get(&src) {
            let i = self.peers.iter().position(|p| p.key == *key);
            if let Some(i) = i {
                if self.peers[i].peer.accepts(now, src, local, data) {
                    return Some(i);
                }
            }
        }
        let ufrag = stun_local_ufrag(data)?;
        let i = self
            .peers
            .iter()
            .position(|p| p.peer.local_ufrag().as_bytes() == ufrag)?;
        let e = &mut self.peers[i];
        if !e.peer.accepts(now, src, local, data) {
            return None;
        }
        if !self.by_addr.contains_key(&src) && e.addrs < MAX_ADDRS_PER_PEER {
            e.addrs += 1;
            self.by_addr.insert(src, e.key);
        }
        Some(i)
    }

    /// Drives peer timers and applies the lifecycle rules. Returns the next wake-up.
    fn timeouts(&mut self, now: Instant) -> Instant {
        let mut next = now + IDLE_PARK;
        let mut i = 0;
        while i < self.peers.len() {
            let e = &mut self.peers[i];
            if e.next_timeout.is_some_and(|t| t <= now) {
                e.peer.timeout(now);
                e.next_timeout = drain(e, &self.sockets, &mut self.batch, &self.stats);
            }
            let state = e.peer.state();
            let expired = match state {
                ConnState::Closed => true,
                ConnState::Connecting => now - e.created > self.lifecycle.connect_timeout,
                ConnState::Connected => now - e.last_rx > self.lifecycle.vanish_timeout,
            };
            if expired {
                let why = match state {
                    ConnState::Closed => &self.stats.peers_closed,
                    ConnState::Connecting => &self.stats.peers_connect_timeout,
                    ConnState::Connected => &self.stats.peers_vanished,
                };
                StreamStats::add(why, 1);
                self.remove_peer(i, true);
                continue;
            }
            if state == ConnState::Connecting {
                next = next.min(now + HANDSHAKE_PARK);
            }
            if let Some(t) = e.next_timeout {
                next = next.min(t);
            }
            i += 1;
        }
        next
    }

    fn remove_peer(&mut self, i: usize, report: bool) {
        let mut e = self.peers.swap_remove(i);
        e.peer.close();
        drain(&mut e, &self.sockets, &mut self.batch, &self.stats);
        if e.addrs > 0 {
            self.by_addr.retain(|_, k| *k != e.key);
        }
        if report {
            // The receiver is the service; if it is gone we are shutting down.
            let _ = self.ended.send(e.key);
        }
    }

    fn drain_all(&mut self) {
        for e in &mut self.peers {
            e.next_timeout = drain(e, &self.sockets, &mut self.batch, &self.stats);
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        record_flush(&self.stats, self.batch.flush(&self.sockets));
    }
}

/// Moves a peer's ready datagrams into the batch (flushing it when full); returns the
/// peer's next timeout.
fn drain(
    e: &mut PeerEntry,
    sockets: &Sockets,
    batch: &mut Batch,
    stats: &StreamStats,
) -> Option<Instant> {
    e.peer.drain(&mut |d| {
        let sock = sockets.index_of(d.source).unwrap_or(0);
        if batch.push(sock, d.destination, d.data) {
            return;
        }
        if batch.len() == batch.capacity() {
            record_flush(stats, batch.flush(sockets));
            if batch.push(sock, d.destination, d.data) {
                return;
            }
        }
        StreamStats::add(&stats.datagrams_send_failed, 1);
    })
}

fn record_flush(stats: &StreamStats, f: super::udp::Flushed) {
    StreamStats::add(&stats.datagrams_sent, f.sent);
    StreamStats::add(&stats.send_syscalls, f.syscalls);
    if f.failed > 0 {
        StreamStats::add(&stats.datagrams_send_failed, f.failed);
    }
}
