//! Client state (stub; see issue 3).
