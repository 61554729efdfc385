//! Loading `state.json` at start-up: parse and sanitize, fall back to the backup, move
//! unreadable files aside, and read seed files for import.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{backup_path, sibling, tmp_path};
use crate::state::command::StoreError;
use crate::state::model::{sanitize, StateFile, FORMAT_VERSION};

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
