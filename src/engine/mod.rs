//! The mixing engine (stub; see issue 3).
pub mod params;
