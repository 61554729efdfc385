//! The seam between "Opus packets of a mix" and "a network peer listening to it".
//!
//! Why sans-IO: a listener's WebRTC stack (ICE, DTLS, SRTP, RTCP) is a state machine fed with
//! datagrams and time. Keeping sockets, threads and clocks out of it lets one shard thread
//! drive every listener of its mixes in one pass per engine tick (write, drain, one
//! `sendmmsg`), with no task, channel or wake-up per listener. [`AudioTransport`] makes peers
//! from WHEP offers; [`Peer`] is one listener; `str0m_peer.rs` implements both on str0m.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::StreamError;

/// One Opus packet of a mix, shared by all its listeners.
#[derive(Clone, Debug)]
pub struct OpusPacket {
    /// The encoded frame (one Opus packet = one RTP payload), shared, never copied per
    /// listener.
    pub payload: Arc<[u8]>,
    /// Media time of the first sample, in 48 kHz samples since the mix started encoding.
    /// Advances by `samples` per frame, and also over dropped frames (the receiver sees
    /// the gap and conceals it).
    pub timestamp: u32,
    /// Samples per channel in this packet.
    pub samples: u32,
}

/// Lifecycle of a listener's connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Negotiated, ICE/DTLS not done yet.
    Connecting,
    /// Packets flow.
    Connected,
    /// Gone for good (ICE/DTLS failure, closed by either side).
    Closed,
}

/// What [`Peer::write`] did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// Queued for sending.
    Sent,
    /// Not connected yet (or any more): silently not sent.
    NotReady,
    /// The stack refused it: skipped for this listener.
    Dropped,
}

/// Where a datagram goes: one `Transmit` of the stack, borrowed until the sink returns.
pub struct Datagram<'a> {
    /// Local address to send from (one of the addresses the peer was given).
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub data: &'a [u8],
}

/// A listener's WebRTC stack, sans-IO. Driven by exactly one thread (its shard).
pub trait Peer: Send {
    /// Our ICE username fragment: a new peer's first STUN request names it, which is how
    /// a datagram from an address not seen before finds its peer.
    fn local_ufrag(&self) -> &str;
    /// True if this datagram belongs to this peer (STUN for its ufrag, or traffic from its
    /// selected remote address).
    fn accepts(&self, now: Instant, source: SocketAddr, local: SocketAddr, data: &[u8]) -> bool;
    /// Feeds one received datagram. An error means the peer is finished.
    fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        local: SocketAddr,
        data: &[u8],
    ) -> Result<(), StreamError>;
    /// Advances the stack's clock (retransmits, RTCP reports, ICE timers).
    fn timeout(&mut self, now: Instant);
    /// Queues one packet of the mix for this listener.
    fn write(&mut self, now: Instant, packet: &OpusPacket) -> SendOutcome;
    /// Hands every datagram ready to go to `sink`, and returns when [`Peer::timeout`] wants
    /// calling next.
    fn drain(&mut self, sink: &mut dyn FnMut(Datagram<'_>)) -> Option<Instant>;
    /// Current state.
    fn state(&self) -> ConnState;
    /// Closes the connection (the stack may queue a last datagram: drain after).
    fn close(&mut self);
}

/// Makes listener peers from WHEP offers.
pub trait AudioTransport: Send + Sync + 'static {
    /// Answers `offer_sdp` (ICE-lite, host candidates on `local`, gathering complete, so no
    /// trickle is needed) and returns the peer. Errors: [`StreamError::BadOffer`] for an
    /// offer we cannot serve, other variants for local failures.
    fn accept(
        &self,
        offer_sdp: &str,
        local: &[SocketAddr],
        now: Instant,
    ) -> Result<(String, Box<dyn Peer>), StreamError>;
}

/// Most media sections an offer may have: a WHEP player sends one (audio), a browser that
/// also asked for video two. More is someone probing us; each section costs state.
pub const MAX_MEDIA_SECTIONS: usize = 4;

/// Cheap checks of an offer before any transport work, so garbage gets a precise 400.
/// Returns the reason an offer cannot be served.
pub fn precheck_offer(sdp: &str) -> Result<(), StreamError> {
    let bad = |r: &str| Err(StreamError::BadOffer(r.to_owned()));
    if !sdp.starts_with("v=0") {
        return bad("not an SDP offer (must start with v=0)");
    }
    let mut in_audio = false;
    let mut audio = false;
    let mut opus = false;
    let mut sections = 0usize;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            sections += 1;
            if sections > MAX_MEDIA_SECTIONS {
                return Err(StreamError::BadOffer(format!(
                    "offer has more than {MAX_MEDIA_SECTIONS} media sections"
                )));
            }
            in_audio = m.starts_with("audio ");
            audio |= in_audio;
        } else if in_audio {
            if let Some(rtpmap) = line.strip_prefix("a=rtpmap:") {
                let codec = rtpmap.split_whitespace().nth(1).unwrap_or("");
                if codec.to_ascii_lowercase().starts_with("opus/48000") {
                    opus = true;
                }
            }
        }
    }
    if !audio {
        return bad("offer has no audio m-line");
    }
    if !opus {
        return bad("offer's audio m-line has no opus/48000 codec");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precheck() {
        let ok = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
        assert!(precheck_offer(ok).is_ok());
        assert!(precheck_offer("hello").is_err());
        let no_audio = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
        assert!(precheck_offer(no_audio).is_err());
        let no_opus = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n";
        assert!(precheck_offer(no_opus).is_err());
        let opus_in_video =
            "v=0\r\nm=audio 9 X 0\r\nm=video 9 X 111\r\na=rtpmap:111 opus/48000/2\r\n";
        assert!(precheck_offer(opus_in_video).is_err());
        let many = format!(
            "v=0\r\n{}",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n".repeat(100)
        );
        let e = precheck_offer(&many).expect_err("100 m-lines");
        assert!(e.to_string().contains("media sections"), "{e}");
    }
}
