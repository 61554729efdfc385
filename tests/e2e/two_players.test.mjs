// Two different players share one mix: the page (Chromium's WebRTC) and the Rust test
// listener (the `webrtc` crate, examples/whep_listen.rs), both on the same client's mix at
// once; each hears the mix's tones on the right sides.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join as pjoin, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, startServer, tempDir, cleanup, PHONE, join, wsClient, until, inbound } from './helpers.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const LISTEN = process.env.MONMIX_LISTEN_BIN || pjoin(process.env.CARGO_TARGET_DIR || pjoin(root, 'target'), 'debug', 'examples', 'whep_listen');

let browser;
let srv;
let dir;
before(async () => {
  browser = await launch();
  dir = tempDir();
  srv = await startServer(dir);
});
after(async () => {
  await browser?.close();
  await srv?.kill();
  cleanup(dir);
});

const packets = async (page) => (await inbound(page))?.packetsReceived ?? 0;
const underruns = async (s) => Number((await (await fetch(`${s.url}/metrics`)).text()).match(/^monmix_engine_underruns_total (\d+)/m)?.[1] ?? NaN);

test('the browser and the Rust listener share one mix', { timeout: 90000 }, async () => {
  const ctx = await browser.newContext(PHONE);
  const page = await ctx.newPage();
  const id = await join(page, srv.url, 'Gus');
  const ws = await wsClient(srv.addr, { client_id: id.client_id, token: id.token });
  // Kick (310 Hz) hard left, Snare (370 Hz) hard right.
  ws.send({ type: 'subscribe', channels: [0, 1], pans: { 0: -1, 1: 1 } });
  await page.locator('#listen').click();
  await until(() => page.evaluate(() => window.monmix.listener.pc?.connectionState === 'connected'), 10000, 'page connected');
  const before = await packets(page);
  const xruns0 = await underruns(srv);
  const out = await new Promise((res, rej) =>
    execFile(LISTEN, [`${srv.url}/whep/${id.client_id}`, id.token, '3', '310', '370'], { timeout: 30000 }, (e, stdout, stderr) =>
      e ? rej(new Error(`${e.message}\n${stderr}`)) : res(stdout),
    ),
  );
  const after = await packets(page);
  // Frames the server's input did not deliver in time (a starved 2-core machine) are mixed
  // as silence: the expected level is -20 dBFS less their share of the 3 s (300 frames).
  const missed = (await underruns(srv)) - xruns0;
  const want = -20 + 10 * Math.log10(Math.max(0.05, 1 - missed / 300));
  const heard = JSON.parse(out.trim().split('\n').pop());
  console.log(`# rust listener ${JSON.stringify(heard)}; page packets during it ${after - before}; server underruns ${missed}`);
  assert.ok(heard.packets > 250, `rust listener packets ${heard.packets}`);
  assert.equal(heard.decode_errors, 0);
  const [kick, snare] = heard.tones;
  assert.ok(Math.abs(kick.left_dbfs - want) <= 1, `kick left ${kick.left_dbfs} (want ${want.toFixed(2)})`);
  // Opposite side: at least 30 dB down, as the page's own check (Opus joint stereo at
  // 128 kb/s leaks a little when both sides carry a full-level tone).
  assert.ok(kick.right_dbfs < kick.left_dbfs - 30, `kick right ${kick.right_dbfs}`);
  assert.ok(Math.abs(snare.right_dbfs - want) <= 1, `snare right ${snare.right_dbfs} (want ${want.toFixed(2)})`);
  assert.ok(snare.left_dbfs < snare.right_dbfs - 30, `snare left ${snare.left_dbfs}`);
  // The page kept receiving all along (about 100 packets/s for ≥ 3.5 s).
  assert.ok(after - before > 300, `page packets during the Rust listener: ${after - before}`);
  ws.close?.();
  await ctx.close();
});
