//! Client state: the mix model in the seed's `channels_state` schema ([`model`]), the
//! commands and events every wire layer speaks ([`command`]), the single-writer
//! [`Store`] ([`store`]), crash-safe persistence of `state.json` ([`persist`]) and client
//! ids/tokens ([`identity`]).
//!
//! The store is the single source of truth: wire layers send [`Command`]s and listen to
//! [`Event`]s; the engine receives [`crate::engine::params::EngineParams`] snapshots through
//! the `publish` callback given to [`Store::open`].

pub mod command;
pub mod identity;
pub mod model;
pub mod persist;
mod sanitize;
pub mod store;

pub use command::{Applied, Change, Command, Event, Op, StoreError};
pub use identity::{hash_token, new_client_id, new_token};
pub use model::{DeviceRecord, MixPreset, MixState, StateFile, FORMAT_VERSION};
pub use persist::{import_seed, LoadReport, LoadSource, PersistStats};
pub use store::{ClientInfo, Publish, Store, StoreOptions};
