//! `state.json` on disk: crash-safe writes from one debounced writer thread, and a loader
//! that never silently starts empty over a user's data.
//!
//! # Write protocol (and why in this order)
//! 1. serialize the snapshot (taken under the store lock, serialized outside it);
//! 2. write `state.json.tmp`, `fsync` it — the new generation is durable but invisible;
//! 3. if `state.json` exists: hard-link it as `state.json.bak.tmp` and rename that over
//!    `state.json.bak` — the previous generation becomes the backup *while `state.json`
//!    still exists*. (Renaming `state.json` to `.bak` instead would leave an instant with no
//!    `state.json`; a crash there would start from the backup.) Filesystems without hard
//!    links get a copy + fsync instead;
//! 4. rename `state.json.tmp` over `state.json` (atomic on POSIX);
//! 5. `fsync` the directory so the renames themselves survive a power cut. While changes
//!    keep coming, the writer thread defers this step until no write is due (at most
//!    1 s): it is not needed for integrity, only for how recent the file is after a power
//!    cut, and it would double the time a change waits to be on disk.
//!
//! At every instant `state.json` is a complete generation (old or new) and `.bak` is a
//! complete older one. A failure anywhere leaves the last good `state.json` in place; the
//! writer counts it, logs it and rewrites the *whole* state about once a second until it
//! succeeds (after a failed fsync nothing about the file's contents can be trusted).
//!
//! # Debounce
//! The first change after a write arms a deadline `debounce` later (clamped to
//! [`MAX_DEBOUNCE`]); later changes do not move it, so continuous fader moves are written
//! every `debounce` + write time and a change is on disk within ~100 ms.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::command::StoreError;
use super::model::{sanitize, StateFile, FORMAT_VERSION};

/// Upper bound for the debounce, so the file follows a change within 100 ms even with a
/// slow fsync.
pub const MAX_DEBOUNCE: Duration = Duration::from_millis(50);
/// A write slower than this is logged: it eats the margin of "on disk within 150 ms".
pub const SLOW_WRITE: Duration = Duration::from_millis(75);
/// Pause between attempts after a failed write.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Where the loaded state came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadSource {
    /// `state.json`.
    Primary,
    /// `state.json.bak` (primary missing or unreadable; logged as an error).
    Backup,
    /// Nothing usable on disk.
    Empty,
}

/// What [`load`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadReport {
    pub source: LoadSource,
    /// Where an unreadable `state.json` was moved (`state.json.corrupt-<unix secs>`).
    pub quarantined: Option<PathBuf>,
    /// Clients in the loaded state.
    pub clients: usize,
    /// Values that had to be clamped or dropped (logged as warnings).
    pub repairs: usize,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of our locks cannot leave the data half-updated in a way
    // that matters more than stopping the server would, so keep going with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// `state.json.bak` beside `path`.
pub fn backup_path(path: &Path) -> PathBuf {
    sibling(path, ".bak")
}

fn tmp_path(path: &Path) -> PathBuf {
    sibling(path, ".tmp")
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Parses and sanitizes state bytes. Structural problems are `Corrupt`; a newer format is
/// `UnsupportedFormat` (not corrupt: a newer monmix wrote it, do not quarantine it).
pub fn parse_state(bytes: &[u8], path: &Path) -> Result<(StateFile, usize), StoreError> {
    let mut state: StateFile = serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if state.format_version > FORMAT_VERSION {
        return Err(StoreError::UnsupportedFormat {
            path: path.to_path_buf(),
            found: state.format_version,
            supported: FORMAT_VERSION,
        });
    }
    let repairs = sanitize(&mut state).notes.len();
    Ok((state, repairs))
}

/// Reads and parses one file; `Ok(None)` if it does not exist.
pub fn read_state(path: &Path) -> Result<Option<(StateFile, usize)>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => parse_state(&bytes, path).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Reads a Fichatech `channels_state.json` (the seed's format, or our own `state.json`)
/// for `monmix state import`. Values are validated like a state file (clamped if out of
/// range); token hashes are dropped: imported clients must be claimed again.
pub fn import_seed(path: &Path) -> Result<StateFile, StoreError> {
    let bytes = fs::read(path).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let (mut state, _) = parse_state(&bytes, path)?;
    for dev in state.devices.values_mut() {
        dev.token_hash = None;
    }
    Ok(state)
}

/// Moves an unreadable file aside as `<name>.corrupt-<unix secs>[-n]`, never overwriting
/// an earlier quarantined file.
fn quarantine(path: &Path) -> Result<PathBuf, StoreError> {
    let base = sibling(path, &format!(".corrupt-{}", unix_secs()));
    let mut target = base.clone();
    let mut n = 1;
    while target.exists() {
        target = sibling(&base, &format!("-{n}"));
        n += 1;
    }
    fs::rename(path, &target).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(target)
}

/// Loads the state at start-up (see the module docs for the policy).
///
/// * missing `state.json`: the backup if there is one (logged as an error: something
///   deleted the primary), else empty (info);
/// * unreadable `state.json`: moved aside, then the backup; if that fails too, it is moved
///   aside as well and the store starts empty, loudly;
/// * an I/O error other than "not found", or a file from a newer monmix: `Err` — better
///   not to start than to start empty and overwrite a band's mixes.
pub fn load(path: &Path) -> Result<(StateFile, LoadReport), StoreError> {
    for stale in [tmp_path(path), sibling(&backup_path(path), ".tmp")] {
        if fs::remove_file(&stale).is_ok() {
            tracing::info!("removed stale {}", stale.display());
        }
    }
    let bak = backup_path(path);
    let mut quarantined = None;
    match read_state(path) {
        Ok(Some((state, repairs))) => {
            let clients = state.channels_state.len();
            tracing::info!(
                "loaded {} ({clients} clients, sequence {})",
                path.display(),
                state.sequence
            );
            return Ok((
                state,
                LoadReport {
                    source: LoadSource::Primary,
                    quarantined: None,
                    clients,
                    repairs,
                },
            ));
        }
        Ok(None) => {}
        Err(StoreError::Corrupt { message, .. }) => {
            let q = quarantine(path)?;
            tracing::error!(
                "STATE FILE UNREADABLE: {} ({message}); moved aside to {}; trying the backup {}",
                path.display(),
                q.display(),
                bak.display()
            );
            quarantined = Some(q);
        }
        Err(e) => return Err(e),
    }

    match read_state(&bak) {
        Ok(Some((state, repairs))) => {
            let clients = state.channels_state.len();
            tracing::error!(
                "STATE RESTORED FROM BACKUP {} ({clients} clients, sequence {}): {} was {}",
                bak.display(),
                state.sequence,
                path.display(),
                if quarantined.is_some() {
                    "unreadable"
                } else {
                    "missing"
                }
            );
            Ok((
                state,
                LoadReport {
                    source: LoadSource::Backup,
                    quarantined,
                    clients,
                    repairs,
                },
            ))
        }
        Ok(None) => {
            if let Some(q) = &quarantined {
                tracing::error!(
                    "NO USABLE STATE: starting EMPTY; the unreadable file is kept at {}",
                    q.display()
                );
            } else {
                tracing::info!("no state file at {}: starting empty", path.display());
            }
            Ok((StateFile::default(), empty_report(quarantined)))
        }
        Err(StoreError::Corrupt { message, .. }) => {
            let qb = quarantine(&bak)?;
            tracing::error!(
                "NO USABLE STATE: backup {} unreadable too ({message}), moved aside to {}; \
                 starting EMPTY",
                bak.display(),
                qb.display()
            );
            Ok((StateFile::default(), empty_report(quarantined)))
        }
        Err(e) => Err(e),
    }
}

fn empty_report(quarantined: Option<PathBuf>) -> LoadReport {
    LoadReport {
        source: LoadSource::Empty,
        quarantined,
        clients: 0,
        repairs: 0,
    }
}

/// The crash-safe write described in the module docs.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_unsynced_dir(path, bytes)?;
    sync_dir(path)
}

/// Steps 1–4: the new generation is complete and visible; a crash of the process can no
/// longer lose it.
fn write_unsynced_dir(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        // Do not leave a half-written temp file eating the space we just ran out of.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if fs::symlink_metadata(path).is_ok() {
        let bak = backup_path(path);
        let bak_tmp = sibling(&bak, ".tmp");
        let _ = fs::remove_file(&bak_tmp);
        if fs::hard_link(path, &bak_tmp).is_err() {
            fs::copy(path, &bak_tmp)?;
            File::open(&bak_tmp)?.sync_all()?;
        }
        fs::rename(&bak_tmp, &bak)?;
    }
    fs::rename(&tmp, path)
}

/// Step 5 alone: makes the renames of the last write survive a power cut. Until it runs, a
/// power cut can only bring back the previous generation, whole (the data was synced before
/// the rename), never a damaged file.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(dir_of(path))?.sync_all()
}

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
