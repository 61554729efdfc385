//! [`AudioTransport`] on the `webrtc` 0.21 crate: one `PeerConnection` per listener with a
//! single send-only Opus track.
//!
//! Choices, and why:
//! - `TrackLocalStaticRTP`, not `TrackLocalStaticSample`: the mix's packet is encoded once;
//!   we only stamp each listener's SSRC, sequence number and timestamp on a header and share
//!   the payload `Bytes` (no copy, no per-listener packetizer).
//! - Interceptors: only RTCP sender reports (receivers need them for A/V sync and stats).
//!   No NACK (a retransmitted 10 ms audio packet arrives after its playout time anyway) and
//!   no TWCC (we do not adapt the bitrate per listener: the packet is shared).
//! - mDNS off by default: no multicast from the server; a browser that hides its address
//!   behind a `.local` candidate still connects, because it sends the first STUN check to
//!   our host candidate and we learn its address as peer-reflexive.
//! - Non-blocking send from the encoder thread: the crate's `write_rtp` only pushes into the
//!   peer's driver queue; we poll that future once with a no-op waker and treat "would
//!   wait" as a dropped packet for this listener.

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rtc::interceptor::{Registry, SenderReportBuilder, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MediaEngine, MIME_TYPE_OPUS};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::{watch, Notify};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState,
};
use webrtc::runtime::default_runtime;

use super::transport::{AudioTransport, ConnState, ListenerConn, OpusPacket, SendOutcome};
use super::StreamError;

/// Opus fmtp we offer and answer: stereo both ways, no in-band FEC (it costs bitrate and
/// we would rather spend it on quality; loopback and a good Wi-Fi rarely lose packets).
pub const OPUS_FMTP: &str = "minptime=10;useinbandfec=0;stereo=1;sprop-stereo=1";
/// Our preferred payload type; the offer's number for Opus wins in the answer.
const OPUS_PT: u8 = 111;

/// The Opus codec as registered on both ends.
pub(crate) fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: OPUS_FMTP.to_owned(),
        rtcp_feedback: vec![],
    }
}

pub(crate) fn media_engine() -> Result<MediaEngine, StreamError> {
    let mut me = MediaEngine::default();
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus_codec(),
            payload_type: OPUS_PT,
        },
        RtpCodecKind::Audio,
    )
    .map_err(|e| StreamError::Transport(format!("media engine: {e}")))?;
    Ok(me)
}

/// Settings of the WebRTC transport.
#[derive(Clone, Debug)]
pub struct WebrtcConfig {
    /// UDP addresses each peer binds (port 0 = ephemeral). They become the host candidates,
    /// so they must be reachable by the phones: the LAN address of the box (derived from
    /// the HTTP bind address or `stream.public_ip`), loopback for tests.
    pub udp_addrs: Vec<String>,
    /// Longest wait for ICE gathering before answering with what we have.
    pub gather_timeout: Duration,
    /// Resolve remote `.local` candidates by multicast DNS (off: see the module docs).
    pub mdns: bool,
}

impl Default for WebrtcConfig {
    fn default() -> Self {
        WebrtcConfig {
            udp_addrs: vec!["127.0.0.1:0".into()],
            gather_timeout: Duration::from_secs(2),
            mdns: false,
        }
    }
}

impl WebrtcConfig {
    /// The UDP bind list for a server whose HTTP side listens on `http_bind`:
    /// `stream.public_ip` when set (the address phones reach), else the HTTP address's IP
    /// (the `webrtc` crate expands a wildcard `0.0.0.0`/`::` into one socket per interface
    /// address, loopback and link-local excluded), always with ephemeral ports.
    pub fn for_http_bind(
        http_bind: std::net::SocketAddr,
        public_ip: Option<std::net::IpAddr>,
    ) -> Self {
        let ip = public_ip.unwrap_or(http_bind.ip());
        WebrtcConfig {
            udp_addrs: vec![std::net::SocketAddr::new(ip, 0).to_string()],
            ..WebrtcConfig::default()
        }
    }
}

/// Makes one `webrtc` peer per listener.
pub struct WebrtcTransport {
    cfg: WebrtcConfig,
}

impl WebrtcTransport {
    pub fn new(cfg: WebrtcConfig) -> Self {
        WebrtcTransport { cfg }
    }
}

/// Peer events -> our state and the gathering-complete signal.
struct Handler {
    gathered: Arc<Notify>,
    state: Arc<watch::Sender<ConnState>>,
    connected: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, s: RTCIceGatheringState) {
        if s == RTCIceGatheringState::Complete {
            self.gathered.notify_one();
        }
    }

    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        let next = match s {
            RTCPeerConnectionState::Connected => ConnState::Connected,
            RTCPeerConnectionState::Disconnected => ConnState::Disconnected,
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => ConnState::Closed,
            _ => return,
        };
        self.connected
            .store(next == ConnState::Connected, Ordering::Release);
        // Closed is final: a late event must not revive it.
        self.state.send_if_modified(|cur| {
            let change = *cur != next && *cur != ConnState::Closed;
            if change {
                *cur = next;
            }
            change
        });
    }
}

fn terr(what: &str) -> impl Fn(webrtc::error::Error) -> StreamError + '_ {
    move |e| StreamError::Transport(format!("{what}: {e}"))
}

#[async_trait::async_trait]
impl AudioTransport for WebrtcTransport {
    async fn open(&self, offer_sdp: &str) -> Result<(String, Arc<dyn ListenerConn>), StreamError> {
        let offer = RTCSessionDescription::offer(offer_sdp.to_owned())
            .map_err(|e| StreamError::BadOffer(format!("unparsable SDP: {e}")))?;
        let runtime =
            default_runtime().ok_or_else(|| StreamError::Transport("no async runtime".into()))?;
        let registry = Registry::new().with(Slot::SenderReport, SenderReportBuilder::new().build());
        let mut settings = SettingEngineBuilder::new();
        if !self.cfg.mdns {
            settings = settings.with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled);
        }
        let gathered = Arc::new(Notify::new());
        let (state_tx, state_rx) = watch::channel(ConnState::Connecting);
        let state_tx = Arc::new(state_tx);
        let connected = Arc::new(AtomicBool::new(false));
        let handler = Handler {
            gathered: gathered.clone(),
            state: state_tx.clone(),
            connected: connected.clone(),
        };
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media_engine()?)
            .with_setting_engine(settings.build())
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(handler))
            .with_runtime(runtime)
            .with_udp_addrs(self.cfg.udp_addrs.clone())
            .build()
            .await
            .map_err(terr("peer connection"))?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        match negotiate(&pc, offer, &gathered, self.cfg.gather_timeout).await {
            Ok((answer, track, ssrc, pt)) => {
                let conn = WebrtcConn {
                    pc,
                    track,
                    ssrc,
                    pt,
                    seq: AtomicU16::new(rand::random()),
                    ts_offset: rand::random(),
                    connected,
                    state_tx,
                    state_rx,
                };
                Ok((answer, Arc::new(conn)))
            }
            Err(e) => {
                // Without close() the peer's driver task would live on.
                drop(pc.close().await);
                Err(e)
            }
        }
    }
}

/// Adds our track, applies the offer, answers, waits for gathering.
async fn negotiate(
    pc: &Arc<dyn PeerConnection>,
    offer: RTCSessionDescription,
    gathered: &Notify,
    gather_timeout: Duration,
) -> Result<(String, Arc<TrackLocalStaticRTP>, u32, u8), StreamError> {
    let ssrc = rand::random::<u32>();
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "monmix".into(),
        "mix".into(),
        "mix".into(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: opus_codec(),
            ..Default::default()
        }],
    )));
    let sender = pc
        .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
        .await
        .map_err(terr("add track"))?;
    pc.set_remote_description(offer)
        .await
        .map_err(|e| StreamError::BadOffer(format!("offer rejected: {e}")))?;
    let answer = pc
        .create_answer(None)
        .await
        .map_err(|e| StreamError::BadOffer(format!("cannot answer the offer: {e}")))?;
    pc.set_local_description(answer)
        .await
        .map_err(terr("set local description"))?;
    // Timeout: answer with the candidates gathered so far (host candidates come at once).
    drop(tokio::time::timeout(gather_timeout, gathered.notified()).await);
    let sdp = pc
        .local_description()
        .await
        .ok_or_else(|| StreamError::Transport("no local description".into()))?
        .sdp;
    let params = sender
        .get_parameters()
        .await
        .map_err(terr("sender parameters"))?;
    let pt = params
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_OPUS))
        .map(|c| c.payload_type)
        .ok_or_else(|| StreamError::BadOffer("no Opus codec negotiated".into()))?;
    if !sdp.contains("\nm=audio ") || sdp.contains("m=audio 0 ") {
        return Err(StreamError::BadOffer("audio m-line rejected".into()));
    }
    Ok((sdp, track, ssrc, pt))
}

/// One listener's peer.
struct WebrtcConn {
    pc: Arc<dyn PeerConnection>,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    pt: u8,
    /// Next RTP sequence number. Only the mix's encoder thread sends, so load/store is
    /// enough; it advances only for packets actually queued.
    seq: AtomicU16,
    /// Random RTP timestamp origin (RFC 3550 §5.1).
    ts_offset: u32,
    connected: Arc<AtomicBool>,
    state_tx: Arc<watch::Sender<ConnState>>,
    state_rx: watch::Receiver<ConnState>,
}

#[async_trait::async_trait]
impl ListenerConn for WebrtcConn {
    fn send(&self, packet: &OpusPacket) -> SendOutcome {
        if !self.connected.load(Ordering::Acquire) {
            return SendOutcome::NotReady;
        }
        let seq = self.seq.load(Ordering::Relaxed);
        let rtp = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: self.pt,
                sequence_number: seq,
                timestamp: self.ts_offset.wrapping_add(packet.timestamp),
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: packet.payload.clone(),
        };
        let mut fut = self.track.write_rtp(rtp);
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => {
                self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
                SendOutcome::Sent
            }
            Poll::Ready(Err(_)) => SendOutcome::NotReady,
            // The driver's queue is full (or the track is being rebound): dropping the
            // future drops the packet, for this listener only.
            Poll::Pending => SendOutcome::Dropped,
        }
    }

    fn state(&self) -> watch::Receiver<ConnState> {
        self.state_rx.clone()
    }

    async fn close(&self) {
        self.connected.store(false, Ordering::Release);
        self.state_tx.send_replace(ConnState::Closed);
        // Errors here mean "already closed".
        drop(self.pc.close().await);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_addrs_follow_http_bind_or_public_ip() {
        let http: std::net::SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        assert_eq!(
            WebrtcConfig::for_http_bind(http, None).udp_addrs,
            ["127.0.0.1:0"]
        );
        let public = "192.168.1.20".parse().ok();
        assert_eq!(
            WebrtcConfig::for_http_bind("0.0.0.0:80".parse().expect("addr"), public).udp_addrs,
            ["192.168.1.20:0"]
        );
        assert_eq!(
            WebrtcConfig::for_http_bind("[::]:80".parse().expect("addr"), None).udp_addrs,
            ["[::]:0"]
        );
    }
}
