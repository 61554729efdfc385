//! An engineer's cue token (`welcome.cue_token`, a WHEP bearer for any mix) is valid while
//! the engineer's WebSocket session is open, and revoked when it ends: tokens no longer
//! pile up for the life of the server with every engineer reconnect.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::whep_listener::{ClientError, ClientOptions, WhepListener};
use common::in_process::InProcess;
use common::{Endpoint, Ws, ADMIN_PIN};
use futures_util::StreamExt;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cue_token_lives_as_long_as_its_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = InProcess::start(dir.path()).await;
    let mut phone = Ws::connect(&server.ws_url()).await;
    let w = phone.hello(json!({"name": "Ana"})).await;
    let url = format!(
        "http://{}/whep/{}",
        server.addr,
        w["client_id"].as_str().expect("client_id")
    );

    let mut eng = Ws::connect(&server.ws_url()).await;
    let ew = eng.hello(json!({"admin_pin": ADMIN_PIN})).await;
    let cue = ew["cue_token"].as_str().expect("cue_token").to_owned();

    // While the engineer is connected, the cue token opens the mix.
    let l = WhepListener::connect(&url, Some(&cue), ClientOptions::default())
        .await
        .expect("cue listen while the engineer is connected");
    assert!(l.wait_connected(Duration::from_secs(10)).await);

    // The engineer leaves: the cue already playing keeps playing...
    eng.inner.close(None).await.expect("close");
    while let Some(Ok(_)) = eng.inner.next().await {}
    let before = l.packets();
    let t = Instant::now();
    while l.packets() < before + 20 && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(l.packets() >= before + 20, "the running cue was cut");

    // ...but the token opens nothing new any more (the server may take a moment to end
    // the session after the close handshake).
    let t = Instant::now();
    let refused = loop {
        match WhepListener::connect(&url, Some(&cue), ClientOptions::default()).await {
            Err(ClientError::Http { status: 401, .. }) => break true,
            Ok(l2) => {
                let _ = l2.delete().await;
                l2.close().await;
            }
            Err(e) => panic!("unexpected: {e}"),
        }
        if t.elapsed() > Duration::from_secs(5) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(refused, "a cue token outlived its engineer session");
    // The phone's own token is unaffected.
    let token = w["token"].as_str().expect("token");
    let own = WhepListener::connect(&url, Some(token), ClientOptions::default())
        .await
        .expect("own token");
    let _ = own.delete().await;
    own.close().await;
    let _ = l.delete().await;
    l.close().await;
    assert!(server.stop().await, "clean stop");
}
