//! [`AudioTransport`] on str0m 0.25: a sans-IO WebRTC stack per listener, driven by its
//! shard.
//!
//! Why str0m (measured, BENCHMARKS.md "Choosing the WebRTC stack"): its send path (write,
//! SRTP, drain) costs about 2.6 µs per packet per listener, a few % of an Opus encode, and it
//! was built to serve many peers from one socket (ICE-lite, `accepts()` demultiplexing).
//!
//! Choices, and why:
//! - ICE-lite with host candidates only: the server is on the stage LAN; the phone does the
//!   checks, we answer them. No STUN/TURN servers to configure or reach.
//! - One DTLS certificate for the process ([`Str0mTransport::new`]): generating one costs
//!   milliseconds of CPU per listener and proves nothing more.
//! - Crypto backend `aws-lc-rs`: it builds from `make run` on a fresh Debian with cmake and a
//!   C compiler, which the Opus build needs anyway (no libssl-dev, no system OpenSSL version
//!   to track), and its AES-GCM uses AES-NI. str0m's pure-Rust backend needs
//!   `str0m-rust-crypto` 0.7, which is not published on the registry this project builds
//!   from.
//! - Opus only, answered `stereo=1; sprop-stereo=1` (without it Chrome decodes mono), no
//!   in-band FEC, `minptime=10`. No header extensions and no transport-cc or NACK feedback:
//!   a retransmitted 10 ms packet arrives after its playout time, and the packet is shared by
//!   every listener of a mix, so there is no per-listener bitrate to adapt.
//! - RTCP sender reports at str0m's audio interval, so receivers get A/V sync and stats.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::SdpOffer;
use str0m::config::DtlsCert;
use str0m::format::{Codec, CodecConfig, CodecSpec, FormatParams, PayloadParams};
use str0m::media::{MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::ExtensionMap;
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};

use super::transport::{AudioTransport, ConnState, Datagram, OpusPacket, Peer, SendOutcome};
use super::StreamError;

/// Our payload type for Opus when the offer does not impose its own.
const OPUS_PT: u8 = 111;

/// Makes str0m peers; holds the process's one DTLS certificate.
pub struct Str0mTransport {
    cert: DtlsCert,
}

impl Str0mTransport {
    /// Installs the crypto provider (once per process) and generates the DTLS certificate.
    pub fn new() -> Result<Self, StreamError> {
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| StreamError::Transport("cannot generate a DTLS certificate".into()))?;
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| provider.install_process_default());
        Ok(Str0mTransport { cert })
    }
}

fn opus_codecs() -> CodecConfig {
    let mut p = PayloadParams::new(
        Pt::from(OPUS_PT),
        None,
        CodecSpec {
            codec: Codec::Opus,
            clock_rate: str0m::media::Frequency::FORTY_EIGHT_KHZ,
            channels: Some(2),
            format: FormatParams {
                min_p_time: Some(10),
                use_inband_fec: Some(false),
                stereo: Some(true),
                sprop_stereo: Some(true),
                ..Default::default()
            },
        },
    );
    p.set_fb_transport_cc(false);
    p.set_fb_nack(false);
    CodecConfig::new_from_payload_params(vec![p])
}

fn random_token(len: usize) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

impl AudioTransport for Str0mTransport {
    fn accept(
        &self,
        offer_sdp: &str,
        local: &[SocketAddr],
        now: Instant,
    ) -> Result<(String, Box<dyn Peer>), StreamError> {
        let offer = SdpOffer::from_sdp_string(offer_sdp)
            .map_err(|e| StreamError::BadOffer(format!("unparsable SDP: {e}")))?;
        let creds = IceCreds {
            ufrag: random_token(8),
            pass: random_token(24),
        };
        let mut cfg = Rtc::builder()
            .set_ice_lite(true)
            .set_dtls_cert(self.cert.clone())
            .set_local_ice_credentials(creds.clone())
            .set_extension_map(ExtensionMap::empty());
        *cfg.codec_config() = opus_codecs();
        let mut rtc = cfg.build(now);
        for a in local {
            let c = Candidate::host(*a, "udp")
                .map_err(|e| StreamError::Transport(format!("host candidate {a}: {e}")))?;
            rtc.add_local_candidate(c);
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| StreamError::BadOffer(format!("offer rejected: {e}")))?;
        let answer = answer.to_sdp_string();
        let mid = sending_audio_mid(&answer).ok_or_else(|| {
            StreamError::BadOffer("offer has no audio section we can send on".into())
        })?;
        let pt = rtc
            .writer(mid)
            .and_then(|w| {
                w.payload_params()
                    .find(|p| p.spec().codec == Codec::Opus)
                    .map(|p| p.pt())
            })
            .ok_or_else(|| StreamError::BadOffer("no Opus codec negotiated".into()))?;
        let peer = Str0mPeer {
            rtc,
            ufrag: creds.ufrag,
            mid,
            pt,
            state: ConnState::Connecting,
            pending: None,
        };
        Ok((answer, Box::new(peer)))
    }
}

/// The mid of the answer's first audio section that is accepted (port not 0) and lets us
/// send (`sendonly`/`sendrecv`).
fn sending_audio_mid(answer: &str) -> Option<Mid> {
    let mut sections = answer.split("\nm=").skip(1);
    sections.find_map(|sec| {
        let accepted = sec.starts_with("audio ") && !sec.starts_with("audio 0 ");
        let sends = sec.lines().any(|l| {
            let l = l.trim_end();
            l == "a=sendonly" || l == "a=sendrecv"
        });
        let mid = sec
            .lines()
            .find_map(|l| l.trim_end().strip_prefix("a=mid:"))?;
        (accepted && sends && !mid.is_empty() && mid.len() <= 16).then(|| Mid::from(mid))
    })
}

/// One listener.
struct Str0mPeer {
    rtc: Rtc,
    ufrag: String,
    mid: Mid,
    pt: Pt,
    state: ConnState,
    /// A timeout str0m returned while we were draining: kept so `drain` can report it.
    pending: Option<Instant>,
}

impl Str0mPeer {
    fn input(&mut self, input: Input<'_>) -> Result<(), StreamError> {
        if let Err(e) = self.rtc.handle_input(input) {
            self.rtc.disconnect();
            self.state = ConnState::Closed;
            return Err(StreamError::Transport(e.to_string()));
        }
        Ok(())
    }
}

fn receive<'a>(source: SocketAddr, local: SocketAddr, data: &'a [u8]) -> Option<Receive<'a>> {
    Some(Receive {
        proto: Protocol::Udp,
        source,
        destination: local,
        contents: data.try_into().ok()?,
    })
}

impl Peer for Str0mPeer {
    fn local_ufrag(&self) -> &str {
        &self.ufrag
    }

    fn accepts(&self, now: Instant, source: SocketAddr, local: SocketAddr, data: &[u8]) -> bool {
        receive(source, local, data).is_some_and(|r| self.rtc.accepts(&Input::Receive(now, r)))
    }

    fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        local: SocketAddr,
        data: &[u8],
    ) -> Result<(), StreamError> {
        let Some(r) = receive(source, local, data) else {
            return Ok(()); // not STUN/DTLS/RTP: ignore, as a browser would
        };
        self.input(Input::Receive(now, r))
    }

    fn timeout(&mut self, now: Instant) {
        drop(self.input(Input::Timeout(now)));
    }

    fn write(&mut self, now: Instant, packet: &OpusPacket) -> SendOutcome {
        if self.state != ConnState::Connected {
            return SendOutcome::NotReady;
        }
        let Some(w) = self.rtc.writer(self.mid) else {
            return SendOutcome::NotReady;
        };
        let t = MediaTime::new(
            u64::from(packet.timestamp),
            str0m::media::Frequency::FORTY_EIGHT_KHZ,
        );
        match w.write(self.pt, now, t, packet.payload.clone()) {
            Ok(()) => SendOutcome::Sent,
            Err(_) => SendOutcome::Dropped,
        }
    }

    fn drain(&mut self, sink: &mut dyn FnMut(Datagram<'_>)) -> Option<Instant> {
        loop {
            if !self.rtc.is_alive() {
                self.state = ConnState::Closed;
                return None;
            }
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => sink(Datagram {
                    source: t.source,
                    destination: t.destination,
                    data: &t.contents,
                }),
                Ok(Output::Timeout(t)) => {
                    self.pending = Some(t);
                    return self.pending;
                }
                Ok(Output::Event(e)) => match e {
                    Event::Connected => self.state = ConnState::Connected,
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        // ICE-lite: the phone stopped checking. The shard's own inactivity
                        // rule decides when the listener is gone.
                    }
                    _ => {}
                },
                Err(_) => {
                    self.rtc.disconnect();
                    self.state = ConnState::Closed;
                    return None;
                }
            }
        }
    }

    fn state(&self) -> ConnState {
        self.state
    }

    fn close(&mut self) {
        self.rtc.disconnect();
        self.state = ConnState::Closed;
    }
}
