//! The debounced writer thread ([`Persister`]) and the [`Writer`] it shares with
//! synchronous flushes, with their [`PersistStats`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{
    lock, sync_dir, write_atomic, write_unsynced_dir, MAX_DEBOUNCE, RETRY_INTERVAL, SLOW_WRITE,
};
use crate::state::command::StoreError;
use crate::state::model::StateFile;

/// Counters of the persister, for logs and /metrics. Readable from any thread.
#[derive(Debug, Default)]
pub struct PersistStats {
    writes: AtomicU64,
    failures: AtomicU64,
    last_write_sequence: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// true while the last attempt failed (the file on disk is behind).
    failing: std::sync::atomic::AtomicBool,
    /// Duration of the last successful write, and the longest, in microseconds.
    last_write_us: AtomicU64,
    max_write_us: AtomicU64,
}

impl PersistStats {
    /// Successful writes since start.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
    /// Failed write attempts since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
    /// Sequence of the state in the last successful write (0 before the first one).
    pub fn last_write_sequence(&self) -> u64 {
        self.last_write_sequence.load(Ordering::Acquire)
    }
    /// Message of the most recent failure, if any ever happened.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }
    /// Whether the most recent attempt failed.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }
    /// How long the last successful write took (serialize, write, two fsyncs, renames).
    pub fn last_write(&self) -> Duration {
        Duration::from_micros(self.last_write_us.load(Ordering::Relaxed))
    }
    /// The longest successful write since start.
    pub fn max_write(&self) -> Duration {
        Duration::from_micros(self.max_write_us.load(Ordering::Relaxed))
    }
    fn record_duration(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        self.last_write_us.store(us, Ordering::Relaxed);
        self.max_write_us.fetch_max(us, Ordering::Relaxed);
    }
}

/// Performs writes; shared by the writer thread and synchronous `flush`.
pub(crate) struct Writer {
    path: PathBuf,
    /// Held across the whole write so generations are written in order; holds the sequence
    /// last written successfully (`None`: unknown or failed since).
    io: Mutex<Option<u64>>,
    stats: Arc<PersistStats>,
    snapshot: Box<dyn Fn() -> StateFile + Send + Sync>,
    /// When the directory was last synced, if a rename since awaits its sync.
    dir_unsynced_since: Mutex<Option<Instant>>,
}

impl Writer {
    pub(crate) fn new(
        path: PathBuf,
        on_disk: Option<u64>,
        stats: Arc<PersistStats>,
        snapshot: Box<dyn Fn() -> StateFile + Send + Sync>,
    ) -> Self {
        Writer {
            path,
            dir_unsynced_since: Mutex::new(None),
            io: Mutex::new(on_disk),
            stats,
            snapshot,
        }
    }

    /// Writes the current state. Unless `force`, skips when that sequence is on disk.
    /// Syncs the directory too.
    pub(crate) fn write(&self, force: bool) -> Result<(), StoreError> {
        self.write_generation(force, true)
    }

    /// Like `write`; with `sync_dir` false the directory sync is left to [`Self::sync_dir`].
    fn write_generation(&self, force: bool, sync_dir: bool) -> Result<(), StoreError> {
        let mut last_ok = lock(&self.io);
        let started = Instant::now();
        let snap = (self.snapshot)();
        if !force && *last_ok == Some(snap.sequence) {
            return Ok(());
        }
        let seq = snap.sequence;
        let result = serde_json::to_vec_pretty(&snap)
            .map_err(|e| StoreError::Serialize(e.to_string()))
            .and_then(|bytes| {
                let written = if sync_dir {
                    write_atomic(&self.path, &bytes)
                } else {
                    write_unsynced_dir(&self.path, &bytes)
                };
                written.map_err(|e| StoreError::Io {
                    path: self.path.clone(),
                    source: e,
                })
            });
        match &result {
            Ok(()) => {
                let took = started.elapsed();
                self.stats.record_duration(took);
                if took >= SLOW_WRITE {
                    tracing::warn!(
                        "slow state write: {} ms (sequence {seq}); changes wait this long to be durable",
                        took.as_millis()
                    );
                }
                *last_ok = Some(seq);
                {
                    let mut d = lock(&self.dir_unsynced_since);
                    if sync_dir {
                        *d = None;
                    } else if d.is_none() {
                        *d = Some(Instant::now());
                    }
                }
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
                self.stats.last_write_sequence.store(seq, Ordering::Release);
                if self.stats.failing.swap(false, Ordering::Relaxed) {
                    tracing::warn!(
                        "state written again to {} (sequence {seq}) after failures",
                        self.path.display()
                    );
                }
            }
            Err(e) => {
                *last_ok = None;
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                self.stats.failing.store(true, Ordering::Relaxed);
                *lock(&self.stats.last_error) = Some(e.to_string());
                tracing::error!("writing state failed (sequence {seq}), will retry: {e}");
            }
        }
        result
    }
}

impl Writer {
    /// Syncs the directory if a rename awaits it and `due(since)` says so.
    fn sync_dir_if(&self, due: impl Fn(Instant) -> bool) {
        let mut last_ok = lock(&self.io);
        let mut d = lock(&self.dir_unsynced_since);
        let Some(since) = *d else { return };
        if !due(since) {
            return;
        }
        let started = Instant::now();
        match sync_dir(&self.path) {
            Ok(()) => {
                *d = None;
                let took = started.elapsed();
                if took >= SLOW_WRITE {
                    tracing::warn!(
                        "slow state write: directory sync took {} ms; the next write waits for it",
                        took.as_millis()
                    );
                }
            }
            Err(e) => {
                // Nothing about the last rename can be trusted: write everything again.
                *last_ok = None;
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                self.stats.failing.store(true, Ordering::Relaxed);
                *lock(&self.stats.last_error) = Some(e.to_string());
                tracing::error!("syncing the state directory failed, will rewrite: {e}");
            }
        }
    }
}

/// Longest a rename waits for its directory sync while writes keep coming.
const MAX_DIR_SYNC_DELAY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct CtlState {
    /// When the next write is due; `None`: nothing to write.
    next: Option<Instant>,
    shutdown: bool,
}

struct Ctl {
    m: Mutex<CtlState>,
    cv: Condvar,
    debounce: Duration,
}

/// The writer thread. Dropping it stops the thread and writes once more, synchronously.
pub(crate) struct Persister {
    ctl: Arc<Ctl>,
    writer: Arc<Writer>,
    thread: Option<JoinHandle<()>>,
}

impl Persister {
    pub(crate) fn start(writer: Arc<Writer>, debounce: Duration) -> Result<Self, StoreError> {
        let ctl = Arc::new(Ctl {
            m: Mutex::new(CtlState::default()),
            cv: Condvar::new(),
            debounce: debounce.min(MAX_DEBOUNCE),
        });
        let (c, w) = (ctl.clone(), writer.clone());
        let thread = std::thread::Builder::new()
            .name("monmix-persist".into())
            .spawn(move || run(&c, &w))
            .map_err(|e| StoreError::Io {
                path: PathBuf::from("<persist thread>"),
                source: e,
            })?;
        Ok(Persister {
            ctl,
            writer,
            thread: Some(thread),
        })
    }

    /// Something changed: make sure a write happens within the debounce. Does not postpone
    /// an already armed deadline (nor a retry back-off after a failure).
    pub(crate) fn mark_dirty(&self) {
        let mut g = lock(&self.ctl.m);
        if g.next.is_none() {
            g.next = Some(Instant::now() + self.ctl.debounce);
            self.ctl.cv.notify_one();
        }
    }

    /// Synchronous write of the current state; on failure the writer thread retries
    /// later even if nothing changes.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        let r = self.writer.write(true);
        if r.is_err() {
            let mut g = lock(&self.ctl.m);
            if g.next.is_none() {
                g.next = Some(Instant::now() + RETRY_INTERVAL);
                self.ctl.cv.notify_one();
            }
        }
        r
    }
}

fn run(ctl: &Ctl, writer: &Writer) {
    loop {
        {
            let mut g = lock(&ctl.m);
            loop {
                if g.shutdown {
                    return;
                }
                match g.next {
                    None => g = ctl.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                    Some(t) => {
                        let now = Instant::now();
                        if now >= t {
                            g.next = None;
                            break;
                        }
                        g = ctl
                            .cv
                            .wait_timeout(g, t - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
            }
        }
        // The directory sync (step 5) is left out of the path a change waits on while
        // changes keep coming: the next generation's rename supersedes this one, and
        // until the sync a power cut brings back the previous generation, whole. It runs
        // as soon as no write is due, or after MAX_DIR_SYNC_DELAY.
        if writer.write_generation(false, false).is_err() {
            // Retry the whole state later, even if nothing changes meanwhile.
            lock(&ctl.m).next = Some(Instant::now() + RETRY_INTERVAL);
            continue;
        }
        let more_due = lock(&ctl.m).next.is_some();
        writer.sync_dir_if(|since| !more_due || since.elapsed() >= MAX_DIR_SYNC_DELAY);
    }
}

impl Drop for Persister {
    fn drop(&mut self) {
        lock(&self.ctl.m).shutdown = true;
        self.ctl.cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Final synchronous write of anything not yet on disk (errors are logged inside),
        // and the directory sync a burst may have left pending.
        let _ = self.writer.write(false);
        self.writer.sync_dir_if(|_| true);
    }
}
