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

mod load;
mod writer;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

pub use load::{import_seed, load, parse_state, read_state, LoadReport, LoadSource};
pub use writer::PersistStats;
pub(crate) use writer::{Persister, Writer};

/// Upper bound for the debounce, so the file follows a change within 100 ms even with a
/// slow fsync.
pub const MAX_DEBOUNCE: Duration = Duration::from_millis(50);
/// A write slower than this is logged: it eats the margin of "on disk within 150 ms".
pub const SLOW_WRITE: Duration = Duration::from_millis(75);
/// Pause between attempts after a failed write.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

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
