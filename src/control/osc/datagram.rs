//! Datagram limits checked before decoding: the size cap ([`MAX_DATAGRAM`]) and the bundle
//! nesting cap ([`MAX_BUNDLE_DEPTH`]), scanned on the raw bytes.

use super::stats::DropReason;

/// Datagrams larger than this are dropped unread.
pub const MAX_DATAGRAM: usize = 8192;
/// Bundles nested deeper than this are dropped before decoding (a top-level bundle is depth 1).
pub const MAX_BUNDLE_DEPTH: usize = 4;

/// Scans the raw bytes for bundle nesting deeper than `max` without decoding (rosc
/// recurses on nested bundles). `Err(DropReason::Malformed)` for a broken bundle frame.
pub fn check_nesting(data: &[u8], max: usize) -> Result<(), DropReason> {
    fn scan(data: &[u8], depth: usize, max: usize) -> Result<(), DropReason> {
        if !data.starts_with(b"#bundle\0") {
            return Ok(());
        }
        if depth > max {
            return Err(DropReason::Nesting);
        }
        if data.len() < 16 {
            return Err(DropReason::Malformed);
        }
        let mut pos = 16;
        while pos < data.len() {
            let Some(len_bytes) = data.get(pos..pos + 4) else {
                return Err(DropReason::Malformed);
            };
            let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
            let Ok(len) = usize::try_from(len) else {
                return Err(DropReason::Malformed);
            };
            let start = pos + 4;
            let Some(elem) = start.checked_add(len).and_then(|end| data.get(start..end)) else {
                return Err(DropReason::Malformed);
            };
            scan(elem, depth + 1, max)?;
            pos = start + len;
        }
        Ok(())
    }
    scan(data, 1, max)
}
