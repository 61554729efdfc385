//! Listens to one mix over WHEP with the test listener (the `webrtc` crate: a stack
//! independent of the server's str0m) and prints what it heard as one JSON line. The
//! browser tests use it so that two different players share one mix
//! (`tests/e2e/two_players.test.mjs`). Dev-only: examples are not part of the product.
//!
//! `whep_listen URL TOKEN SECONDS FREQ...` → `{"packets":N,"decode_errors":N,
//! "tones":[{"hz":F,"left_dbfs":L,"right_dbfs":R},…]}`

#[path = "../tests/common/fft.rs"]
mod fft;
#[path = "../tests/common/whep_listener.rs"]
mod whep_listener;

use std::time::Duration;

use whep_listener::{pcm_of, ClientOptions, WhepListener};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, token, secs, freqs @ ..] = args.as_slice() else {
        anyhow::bail!("usage: whep_listen URL TOKEN SECONDS FREQ...");
    };
    let secs: f64 = secs.parse()?;
    let freqs: Vec<f64> = freqs.iter().map(|f| f.parse()).collect::<Result<_, _>>()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let l = WhepListener::connect(url, Some(token), ClientOptions::default())
            .await
            .map_err(|e| anyhow::anyhow!("connect: {e}"))?;
        anyhow::ensure!(
            l.wait_connected(Duration::from_secs(10)).await,
            "not connected"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        l.take_frames();
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let frames = l.take_frames();
        let pcm = pcm_of(&frames);
        let (left, right) = (fft::channel(&pcm, 2, 0), fft::channel(&pcm, 2, 1));
        let tones: Vec<String> = freqs
            .iter()
            .map(|&f| {
                format!(
                    "{{\"hz\":{f},\"left_dbfs\":{:.2},\"right_dbfs\":{:.2}}}",
                    fft::tone_level_dbfs(&left, f),
                    fft::tone_level_dbfs(&right, f)
                )
            })
            .collect();
        println!(
            "{{\"packets\":{},\"decode_errors\":{},\"tones\":[{}]}}",
            frames.len(),
            l.decode_errors(),
            tones.join(",")
        );
        drop(l.delete().await);
        l.close().await;
        Ok(())
    })
}
