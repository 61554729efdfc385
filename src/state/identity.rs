//! Client ids and tokens. A phone keeps `client_id` + `token` in localStorage; the server
//! keeps only the sha256 of the token, so a leaked `state.json` does not hand out control of
//! every mix.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh client id: `"c-"` + 12 hex chars (48 random bits). Short enough for OSC
/// addresses and logs; collisions are checked by the store on `Register` anyway.
pub fn new_client_id() -> String {
    let mut b = [0u8; 6];
    rand::rng().fill_bytes(&mut b);
    format!("c-{}", hex::encode(b))
}

/// A fresh token: 128 random bits as 32 lower-case hex chars.
pub fn new_token() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// sha256 of the token, lower-case hex (64 chars): what `DeviceRecord::token_hash` stores.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Is `h` shaped like a [`hash_token`] output?
pub fn token_hash_ok(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Compares two byte strings without an early exit on the first difference, so the time
/// taken does not tell an attacker how many leading characters of a hash they guessed.
/// (Both sides are fixed-length hashes; the length itself is not secret.)
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Does `token` hash to `stored_hash`? Hex case-insensitive on the stored side.
pub fn token_matches(stored_hash: &str, token: &str) -> bool {
    let computed = Sha256::digest(token.as_bytes());
    match hex::decode(stored_hash) {
        Ok(stored) => constant_time_eq(&stored, computed.as_slice()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_tokens_have_the_documented_shape() {
        let id = new_client_id();
        assert!(id.starts_with("c-") && id.len() == 14, "{id}");
        assert_ne!(new_client_id(), id);
        let t = new_token();
        assert_eq!(t.len(), 32);
        let h = hash_token(&t);
        assert!(token_hash_ok(&h));
        assert!(token_matches(&h, &t));
        assert!(token_matches(&h.to_uppercase(), &t));
        assert!(!token_matches(&h, "other"));
        assert!(!token_matches("zz", &t));
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
