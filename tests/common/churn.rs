//! Helpers for tests that watch a real server process from outside (`churn`, `soak`): its
//! `/metrics`, raw TCP that can be cut at any byte, and a WHEP offer to replay.

use std::net::SocketAddr;
use std::time::Duration;

use super::whep_listener::{http_request, ClientOptions, WhepListener};
use tokio::net::TcpStream;

/// `GET /metrics` as text (panics if the server does not answer: it must stay up).
pub async fn metrics(addr: SocketAddr) -> String {
    let r = http_request(
        "GET",
        &format!("http://{addr}/metrics"),
        None,
        None,
        Duration::from_secs(10),
    )
    .await
    .expect("GET /metrics");
    assert_eq!(r.status, 200, "/metrics: {}", r.body);
    r.body
}

/// The value of sample `name` (with its labels, e.g. `x{quantile="0.99"}`) in Prometheus
/// text, or None.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Like [`metric`] but 0 when missing... never: a missing metric is a bug, so it panics.
pub fn must(text: &str, name: &str) -> f64 {
    metric(text, name).unwrap_or_else(|| panic!("no metric {name} in /metrics"))
}

/// Writes all of `buf` to a tokio stream (tokio's io-util is not a dependency).
pub async fn write_raw(s: &TcpStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        s.writable().await?;
        match s.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads what arrives within `t` (at most 64 KiB); stops at EOF.
pub async fn read_some(s: &TcpStream, t: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(t, async {
        loop {
            if s.readable().await.is_err() {
                return;
            }
            match s.try_read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if out.len() > 64 * 1024 {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    })
    .await;
    out
}

/// Closes `s` with a TCP RST (SO_LINGER 0) instead of a FIN: the rudest way to vanish.
pub fn reset(s: TcpStream) {
    let _ = s.set_zero_linger();
    drop(s);
}

/// A real recvonly Opus offer from the Rust WHEP client, captured by a fake endpoint that
/// answers 503. Its candidates point at a port that is closed by the time it is replayed,
/// which is exactly a phone that POSTed and went away.
pub async fn capture_offer() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/whep/x", l.local_addr().expect("addr"));
    let fake = tokio::spawn(async move {
        let (s, _) = l.accept().await.expect("accept");
        let mut req = Vec::new();
        loop {
            let chunk = read_some(&s, Duration::from_millis(500)).await;
            if chunk.is_empty() {
                break;
            }
            req.extend_from_slice(&chunk);
            let text = String::from_utf8_lossy(&req);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
        }
        let _ = write_raw(
            &s,
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        let text = String::from_utf8_lossy(&req).to_string();
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    });
    let r = WhepListener::connect(&url, Some("t"), ClientOptions::default()).await;
    assert!(r.is_err(), "the fake endpoint answers 503");
    let offer = fake.await.expect("fake endpoint");
    assert!(offer.starts_with("v=0"), "captured offer: {offer}");
    offer
}

/// The raw bytes of `POST /whep/{client}` with `offer`.
pub fn whep_post_bytes(addr: SocketAddr, client: &str, token: &str, offer: &str) -> Vec<u8> {
    format!(
        "POST /whep/{client} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{offer}",
        offer.len()
    )
    .into_bytes()
}

/// The raw bytes of a WebSocket upgrade request for `/ws`.
pub fn ws_upgrade_bytes(addr: SocketAddr) -> Vec<u8> {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}
