//! HTTPS on the stage LAN: a self-signed certificate made once and reused, the page,
//! `/api`, `/cert.pem` and a WebSocket session over TLS with that certificate trusted,
//! plain HTTP still working, and bad certificates or a taken port refused at start.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message;

use crate::common::in_process::InProcess;
use crate::common::whep_listener::http_request;

/// A TLS connection to `addr` that trusts only `cert_pem`, for the name `localhost`.
async fn tls_connect(
    addr: SocketAddr,
    cert_pem: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(c.expect("PEM")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake with the trusted certificate")
}

/// `GET path` over TLS; (status, content type, body).
async fn get_tls(addr: SocketAddr, cert_pem: &str, path: &str) -> (u16, String, Bytes) {
    let tls = tls_connect(addr, cert_pem).await;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("http1 over TLS");
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header("host", format!("localhost:{}", addr.port()))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = send.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, ctype, body)
}

async fn start_tls(dir: &Path) -> InProcess {
    InProcess::start_with(dir, "tones", |c| {
        c.tls.https = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        c.tls.self_signed = true;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_https_serves_page_api_cert_and_websocket_and_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_tls(dir.path()).await;
    let https = server.https.expect("https address");
    let cert =
        std::fs::read_to_string(dir.path().join("monmix-cert.pem")).expect("cert beside the state");

    let (status, ctype, body) = get_tls(https, &cert, "/").await;
    assert_eq!(
        (status, ctype.starts_with("text/html")),
        (200, true),
        "{ctype}"
    );
    assert!(String::from_utf8_lossy(&body).contains("/js/app.js"));
    let (status, ctype, body) = get_tls(https, &cert, "/cert.pem").await;
    assert_eq!(status, 200);
    assert_eq!(ctype, "application/x-x509-ca-cert");
    assert_eq!(
        body,
        cert.as_bytes(),
        "/cert.pem is the certificate the server uses"
    );
    let (status, _, body) = get_tls(https, &cert, "/api/status").await;
    assert_eq!(status, 200);
    let st: Value = serde_json::from_slice(&body).expect("status JSON");
    let want = format!("https://127.0.0.1:{}/", https.port());
    assert_eq!(st["https_url"], want.as_str(), "{st}");
    assert_eq!(
        st["join_url"],
        want.as_str(),
        "the join URL (and QR) use https: {st}"
    );

    // A WebSocket session over TLS.
    let tls = tls_connect(https, &cert).await;
    let url = format!("wss://localhost:{}/ws", https.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("wss upgrade");
    ws.send(Message::text(
        json!({"type": "hello", "name": "Ana"}).to_string(),
    ))
    .await
    .expect("send");
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("welcome in time")
        .expect("a frame")
        .expect("no error");
    let w: Value = serde_json::from_str(first.to_text().expect("text")).expect("JSON");
    assert_eq!(w["type"], "welcome", "{w}");
    drop(ws);

    // Plain HTTP keeps working beside it.
    let r = http_request(
        "GET",
        &format!("http://{}/api/status", server.addr),
        None,
        None,
        Duration::from_secs(5),
    )
    .await
    .expect("plain http");
    assert_eq!(r.status, 200);
    assert!(server.stop().await, "clean stop");

    // The next start reuses the certificate (phones trusted it once).
    let again = start_tls(dir.path()).await;
    let cert2 = std::fs::read_to_string(dir.path().join("monmix-cert.pem")).unwrap();
    assert_eq!(cert, cert2);
    let (status, _, body) = get_tls(again.https.expect("https"), &cert, "/cert.pem").await;
    assert_eq!((status, body), (200, Bytes::from(cert.clone())));
    assert!(again.stop().await, "clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificates_and_a_taken_port_stop_the_start_with_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-cert.pem");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "-----BEGIN NOTHING-----\n").unwrap();
    let cases: Vec<(
        Option<std::path::PathBuf>,
        Option<std::path::PathBuf>,
        String,
    )> = vec![
        (
            Some(missing.clone()),
            Some(missing.clone()),
            missing.display().to_string(),
        ),
        (
            Some(junk.clone()),
            Some(junk.clone()),
            junk.display().to_string(),
        ),
    ];
    for (cert, key, needle) in cases {
        let e = InProcess::try_start(dir.path(), "tones", |c| {
            c.tls.https = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
            c.tls.cert = cert;
            c.tls.key = key;
        })
        .await
        .err()
        .expect("refused")
        .to_string();
        assert!(e.contains(&needle), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }
    // Neither a file nor self_signed: the config check names the fields.
    let e = InProcess::try_start(dir.path(), "tones", |c| {
        c.tls.https = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await
    .err()
    .expect("refused")
    .to_string();
    assert!(
        e.contains("tls.cert") && e.contains("tls.self_signed"),
        "{e}"
    );
    // An https address in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let e = InProcess::try_start(dir.path(), "tones", |c| {
        c.tls.https = Some(addr);
        c.tls.self_signed = true;
    })
    .await
    .err()
    .expect("refused")
    .to_string();
    assert!(e.contains(&addr.to_string()), "{e}");
    // Nothing was started or written by a refused start.
    assert!(!dir.path().join("state.json").exists());
}
