//! The page's assets: gzip or br where the browser asks, byte-for-byte the files once
//! decoded, plain where it does not; the WebSocket upgrade untouched; and the scripts and
//! styles a phone downloads within their size budget.

use std::io::Read;
use std::time::Duration;

use crate::common::in_process::InProcess;
use crate::common::whep_listener::{http_request_with, HttpResponse};
use crate::common::{Endpoint, Ws};
use serde_json::json;

async fn get(server: &InProcess, path: &str, encoding: Option<&str>) -> HttpResponse {
    let headers: Vec<(&str, &str)> = encoding
        .map(|e| ("accept-encoding", e))
        .into_iter()
        .collect();
    let url = format!("http://{}{path}", server.addr());
    let r = http_request_with("GET", &url, &headers, None, Duration::from_secs(10))
        .await
        .expect("GET");
    assert_eq!(r.status, 200, "{path}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_go_out_compressed_where_asked_and_decode_to_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let server = InProcess::start(dir.path()).await;
    for path in [
        "/",
        "/engineer",
        "/js/app.js",
        "/js/mixer.js",
        "/app.css",
        "/api/status",
    ] {
        let plain = get(&server, path, None).await;
        assert_eq!(plain.header("content-encoding"), None, "{path}");

        let gz = get(&server, path, Some("gzip")).await;
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{path}");
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gz.bytes[..])
            .read_to_end(&mut decoded)
            .expect("valid gzip");
        assert_eq!(decoded, plain.bytes, "{path}: gzip decodes to the file");

        let br = get(&server, path, Some("br, gzip")).await;
        assert_eq!(br.header("content-encoding"), Some("br"), "{path}");
        if plain.bytes.len() > 4096 {
            assert!(
                br.bytes.len() * 2 < plain.bytes.len(),
                "{path}: br {} of {} bytes",
                br.bytes.len(),
                plain.bytes.len()
            );
        }
    }
    // The upgrade is not wrapped: a client that accepts gzip still gets its session.
    let mut ws = Ws::connect(&server.ws_url()).await;
    let w = ws.hello(json!({"name": "Ana"})).await;
    assert_eq!(w["type"], "welcome");
    assert!(server.stop().await, "clean stop");
}

/// What the pages load: every script and style sheet, uncompressed, under 80 KB (web/js/*.js
/// and web/*.css: both pages' code, the shared modules and the two language tables). The
/// service worker (web/sw.js) runs apart from the page, once installed: its own bound.
#[test]
fn scripts_and_styles_stay_under_80_kb() {
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let size = |p: &std::path::Path| std::fs::metadata(p).expect("size").len();
    let mut total = 0u64;
    let mut files = Vec::new();
    for (dir, ext) in [(web.join("js"), "js"), (web.clone(), "css")] {
        for e in std::fs::read_dir(&dir).expect("web dir") {
            let p = e.expect("entry").path();
            if p.extension().and_then(|x| x.to_str()) == Some(ext) {
                files.push((p.display().to_string(), size(&p)));
                total += size(&p);
            }
        }
    }
    assert!(files.len() >= 8, "{files:?}");
    assert!(total < 80 * 1024, "{total} bytes: {files:?}");
    assert!(size(&web.join("sw.js")) < 4 * 1024);
}
