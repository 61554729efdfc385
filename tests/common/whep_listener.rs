#![allow(dead_code)] // a shared helper file: each test binary uses part of it
//! A WHEP listener in Rust: a real WebRTC peer (recvonly Opus stereo) that POSTs its offer
//! with a bearer token, decodes what it receives to 48 kHz stereo PCM, and can DELETE its
//! session. Test-only: it runs the `webrtc` crate, an independent stack from the server's str0m, so
//! the two ends check each other. Also included by
//! `benches/whep_listeners.rs` and `examples/whep_listen.rs` (`#[path]`).
//!
//! HTTP goes through hyper's client (plain HTTP only: the server lives on the LAN).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::interceptor_registry::configure_rtcp_reports;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::Notify;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState,
};
use webrtc::runtime::default_runtime;

use rtc::peer_connection::configuration::media_engine::{MediaEngine, MIME_TYPE_OPUS};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters};

/// The Opus codec the listener offers: stereo both ways, as a browser page of ours does.
fn media_engine() -> Result<MediaEngine, ClientError> {
    let mut me = MediaEngine::default();
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48_000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=0;stereo=1;sprop-stereo=1".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )
    .map_err(|e| ClientError::Webrtc(format!("media engine: {e}")))?;
    Ok(me)
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("bad URL: {0}")]
    Url(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("webrtc: {0}")]
    Webrtc(String),
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Listener options.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// UDP addresses the client peer binds.
    pub udp_addrs: Vec<String>,
    /// Decode Opus to PCM (off for load tests that only count packets).
    pub decode: bool,
    /// Keep every packet's payload (to compare packets across listeners).
    pub record_payloads: bool,
    /// Keep every packet's arrival time and sequence number (pacing, gaps), even without
    /// decoding.
    pub record_arrivals: bool,
    /// HTTP and gathering timeout.
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            udp_addrs: vec!["127.0.0.1:0".into()],
            decode: true,
            record_payloads: false,
            record_arrivals: false,
            timeout: Duration::from_secs(5),
        }
    }
}

/// One received RTP packet.
#[derive(Clone, Debug)]
pub struct ReceivedFrame {
    pub arrival: Instant,
    pub seq: u16,
    pub timestamp: u32,
    /// The Opus payload (if `record_payloads`).
    pub payload: Option<Bytes>,
    /// Decoded interleaved stereo samples (if `decode`).
    pub pcm: Vec<f32>,
}

#[derive(Default)]
struct Shared {
    frames: Mutex<Vec<ReceivedFrame>>,
    packets: AtomicU64,
    decode_errors: AtomicU64,
    connected: AtomicBool,
    closed: AtomicBool,
    state_changed: Notify,
    gathered: Notify,
}

struct Handler {
    shared: Arc<Shared>,
    opts: ClientOptions,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, s: RTCIceGatheringState) {
        if s == RTCIceGatheringState::Complete {
            self.shared.gathered.notify_one();
        }
    }

    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        match s {
            RTCPeerConnectionState::Connected => {
                self.shared.connected.store(true, Ordering::Release)
            }
            RTCPeerConnectionState::Failed
            | RTCPeerConnectionState::Closed
            | RTCPeerConnectionState::Disconnected => {
                self.shared.connected.store(false, Ordering::Release);
                self.shared.closed.store(true, Ordering::Release);
            }
            _ => {}
        }
        self.shared.state_changed.notify_waiters();
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let shared = self.shared.clone();
        let opts = self.opts.clone();
        tokio::spawn(read_track(track, shared, opts));
    }
}

async fn read_track(track: Arc<dyn TrackRemote>, shared: Arc<Shared>, opts: ClientOptions) {
    let mut decoder = if opts.decode {
        opus::Decoder::new(48_000, opus::Channels::Stereo).ok()
    } else {
        None
    };
    // 120 ms of stereo: the longest Opus packet.
    let mut buf = vec![0f32; 2 * 5760];
    while let Some(ev) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(p) = ev else {
            continue;
        };
        let arrival = Instant::now();
        shared.packets.fetch_add(1, Ordering::Relaxed);
        let pcm = match decoder.as_mut() {
            Some(d) => match d.decode_float(&p.payload, &mut buf, false) {
                Ok(n) => buf[..2 * n].to_vec(),
                Err(_) => {
                    shared.decode_errors.fetch_add(1, Ordering::Relaxed);
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        if opts.decode || opts.record_payloads || opts.record_arrivals {
            let f = ReceivedFrame {
                arrival,
                seq: p.header.sequence_number,
                timestamp: p.header.timestamp,
                payload: opts.record_payloads.then(|| p.payload.clone()),
                pcm,
            };
            shared
                .frames
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(f);
        }
    }
}

/// A listening session.
pub struct WhepListener {
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    /// `http://host:port` of the server.
    origin: String,
    /// The session URL path (`Location`).
    location: String,
    timeout: Duration,
}

fn werr(what: &'static str) -> impl Fn(webrtc::error::Error) -> ClientError {
    move |e| ClientError::Webrtc(format!("{what}: {e}"))
}

impl WhepListener {
    /// Connects to `url` (`http://host:port/whep/{client_id}`) with an optional bearer
    /// token. Returns once the server answered (201); media follows when ICE/DTLS complete
    /// (see [`WhepListener::wait_connected`]). Must run inside a tokio runtime.
    pub async fn connect(
        url: &str,
        token: Option<&str>,
        opts: ClientOptions,
    ) -> Result<Self, ClientError> {
        let origin = origin_of(url)?;
        let shared = Arc::new(Shared::default());
        let runtime = default_runtime().ok_or_else(|| ClientError::Webrtc("no runtime".into()))?;
        let me = media_engine()?;
        let registry = configure_rtcp_reports(Registry::new());
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .build();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(me)
            .with_setting_engine(settings)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler {
                shared: shared.clone(),
                opts: opts.clone(),
            }))
            .with_runtime(runtime)
            .with_udp_addrs(opts.udp_addrs.clone())
            .build()
            .await
            .map_err(werr("peer connection"))?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        match Self::negotiate(&pc, &shared, url, token, opts.timeout).await {
            Ok(location) => Ok(WhepListener {
                pc,
                shared,
                origin,
                location,
                timeout: opts.timeout,
            }),
            Err(e) => {
                drop(pc.close().await);
                Err(e)
            }
        }
    }

    async fn negotiate(
        pc: &Arc<dyn PeerConnection>,
        shared: &Shared,
        url: &str,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<String, ClientError> {
        pc.add_transceiver_from_kind(
            RtpCodecKind::Audio,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .await
        .map_err(werr("transceiver"))?;
        let offer = pc.create_offer(None).await.map_err(werr("offer"))?;
        pc.set_local_description(offer)
            .await
            .map_err(werr("set local"))?;
        drop(tokio::time::timeout(timeout, shared.gathered.notified()).await);
        let sdp = pc
            .local_description()
            .await
            .ok_or_else(|| ClientError::Webrtc("no local description".into()))?
            .sdp;
        let res =
            http_request("POST", url, token, Some(("application/sdp", &sdp)), timeout).await?;
        if res.status != 201 {
            return Err(ClientError::Http {
                status: res.status,
                body: res.body,
            });
        }
        let location = res
            .header("location")
            .ok_or_else(|| ClientError::Protocol("201 without Location".into()))?
            .to_owned();
        let answer = RTCSessionDescription::answer(res.body)
            .map_err(|e| ClientError::Protocol(format!("bad answer: {e}")))?;
        pc.set_remote_description(answer)
            .await
            .map_err(werr("set remote"))?;
        Ok(location)
    }

    /// The session URL path from `Location`.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Waits until the peer is connected (true) or `timeout` passes / it failed (false).
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.state_changed.notified();
            if self.shared.connected.load(Ordering::Acquire) {
                return true;
            }
            if self.shared.closed.load(Ordering::Acquire) {
                return false;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return self.shared.connected.load(Ordering::Acquire);
            }
        }
    }

    /// True once the connection failed or closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// RTP packets received so far.
    pub fn packets(&self) -> u64 {
        self.shared.packets.load(Ordering::Relaxed)
    }

    /// Packets that failed to decode.
    pub fn decode_errors(&self) -> u64 {
        self.shared.decode_errors.load(Ordering::Relaxed)
    }

    /// Takes every frame received since the last call.
    pub fn take_frames(&self) -> Vec<ReceivedFrame> {
        std::mem::take(
            &mut *self
                .shared
                .frames
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Sends the WHEP DELETE; returns the HTTP status.
    pub async fn delete(&self) -> Result<u16, ClientError> {
        let url = format!("{}{}", self.origin, self.location);
        Ok(http_request("DELETE", &url, None, None, self.timeout)
            .await?
            .status)
    }

    /// Closes the peer (without telling the server: it notices by DTLS close / ICE).
    pub async fn close(&self) {
        drop(self.pc.close().await);
    }
}

/// Concatenated PCM of `frames` (interleaved stereo).
pub fn pcm_of(frames: &[ReceivedFrame]) -> Vec<f32> {
    frames.iter().flat_map(|f| f.pcm.iter().copied()).collect()
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy: see `bytes`).
    pub body: String,
    /// The body as sent (still compressed if the server compressed it).
    pub bytes: Bytes,
}

impl HttpResponse {
    /// First header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The scheme and authority of `url` (`http://host:port`), where a relative Location
/// resolves.
fn origin_of(url: &str) -> Result<String, ClientError> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| ClientError::Url(format!("{url}: {e}")))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http"), Some(a)) => Ok(format!("http://{a}")),
        _ => Err(ClientError::Url(format!(
            "{url}: only http://host/ is supported"
        ))),
    }
}

/// Bodies above this are refused (a test server never sends one).
const MAX_BODY: usize = 1 << 20;

/// One HTTP/1.1 request with `Connection: close`, through hyper's client. `body` is
/// (content type, text).
pub async fn http_request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<HttpResponse, ClientError> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    http_request_with(method, url, &headers, body, timeout).await
}

/// Like [`http_request`] with any request headers (name, value).
pub async fn http_request_with(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<HttpResponse, ClientError> {
    use http_body_util::{BodyExt, Full, Limited};
    use hyper::header::{CONNECTION, CONTENT_TYPE};

    origin_of(url)?;
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header(CONNECTION, "close");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let text = match body {
        Some((ctype, text)) => {
            req = req.header(CONTENT_TYPE, ctype);
            text
        }
        None => "",
    };
    let req = req
        .body(Full::new(Bytes::from(text.to_owned())))
        .map_err(|e| ClientError::Url(e.to_string()))?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let io = async {
        let resp = client.request(req).await.map_err(|e| transport_error(&e))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| ClientError::Protocol(format!("HTTP body: {e}")))?
            .to_bytes();
        Ok(HttpResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            bytes: body,
        })
    };
    tokio::time::timeout(timeout, io)
        .await
        .map_err(|_| ClientError::Protocol("HTTP timeout".into()))?
}

/// The I/O error under a client error if there is one (tests tell a reset connection from
/// a refused one by its kind), else a protocol error.
fn transport_error(e: &(dyn std::error::Error + 'static)) -> ClientError {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return ClientError::Io(std::io::Error::new(io.kind(), e.to_string()));
        }
        cause = c.source();
    }
    ClientError::Protocol(format!("HTTP: {e}"))
}

#[cfg(test)]
mod tests {
    // Unused where the file is included into a harness-less bench.
    #[allow(unused_imports)]
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("http://127.0.0.1:80/whep/a").expect("url"),
            "http://127.0.0.1:80"
        );
        assert!(origin_of("https://x/").is_err());
        assert!(origin_of("/x").is_err());
    }
}
