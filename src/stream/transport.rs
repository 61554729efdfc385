//! The seam between "Opus packets of a mix" and "a network peer listening to it".
//!
//! Why a trait: the `webrtc` crate does ICE, DTLS, SRTP and RTCP for us, but it costs a
//! tokio task, a socket and an event loop per peer. Keeping it behind [`AudioTransport`]
//! and [`ListenerConn`] means it can be swapped (str0m, a custom SRTP sender with one
//! socket for all listeners) without touching the engine, the encoders or the HTTP layer.
//!
//! The hot path is [`ListenerConn::send`]: it is called on an encoder worker thread (not
//! in async context), once per packet per listener, and must never block: a connection
//! whose queue is full skips the packet and says so.

use bytes::Bytes;
use tokio::sync::watch;

use super::StreamError;

/// One Opus packet of a mix, shared by all its listeners.
#[derive(Clone, Debug)]
pub struct OpusPacket {
    /// The encoded frame (one Opus packet = one RTP payload).
    pub payload: Bytes,
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
    /// Transient loss of connectivity (ICE may recover).
    Disconnected,
    /// Gone for good (ICE/DTLS failure, closed by either side).
    Closed,
}

/// What [`ListenerConn::send`] did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// Handed to the transport.
    Sent,
    /// Not connected yet (or any more): silently not sent.
    NotReady,
    /// The transport's queue was full: skipped for this listener.
    Dropped,
}

/// A listener's connection, as the streaming service sees it.
#[async_trait::async_trait]
pub trait ListenerConn: Send + Sync + 'static {
    /// Queues one packet; never blocks, never awaits. Called from an encoder thread.
    fn send(&self, packet: &OpusPacket) -> SendOutcome;
    /// Watches the connection state (the service ends the session on `Closed`, and on a
    /// `Disconnected` that lasts past its grace period).
    fn state(&self) -> watch::Receiver<ConnState>;
    /// Tears the connection down and frees its sockets and tasks. Idempotent.
    async fn close(&self);
}

/// Makes listener connections from WHEP offers.
#[async_trait::async_trait]
pub trait AudioTransport: Send + Sync + 'static {
    /// Answers `offer_sdp` (ICE gathering complete, so no trickle is needed) and returns
    /// the connection. Errors: [`StreamError::BadOffer`] for an offer we cannot serve, other
    /// variants for local failures.
    async fn open(
        &self,
        offer_sdp: &str,
    ) -> Result<(String, std::sync::Arc<dyn ListenerConn>), StreamError>;
}

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
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
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
    }
}
