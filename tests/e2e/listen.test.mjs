// Listening in the page over WHEP: WebRTC connects, packets and audio level arrive, the
// stereo mix has the subscribed tones on the expected side (FFT in WebAudio), the
// latency readout shows a number, and audio comes back after a server restart.
// Also measures tap-to-audio and the jitter buffer (printed as `# bench` lines).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spectrumInPage } from './spectrum.mjs';
import { launch, startServer, tempDir, cleanup, PHONE, TONES, ADMIN_PIN, TABLET, shot, join, wsClient, until, inbound } from './helpers.mjs';

let browser;
let srv;
let dir;
before(async () => {
  browser = await launch();
  dir = tempDir();
  srv = await startServer(dir);
  // WHEP is part of every build: a server that does not answer its CORS preflight is a
  // failure, never a reason to skip the listening tests.
  const r = await fetch(`${srv.url}/whep/c-probe`, { method: 'OPTIONS' });
  assert.equal(r.status, 204, 'WHEP CORS preflight');
});
after(async () => {
  await browser?.close();
  await srv?.kill();
  cleanup(dir);
});

/** Peak level (dB) near each tone, left and right (tests/e2e/spectrum.mjs). */
const spectrum = (page) => page.evaluate(spectrumInPage, TONES);

test('listen: WebRTC audio of my mix, stereo, mute respected, readouts, restart', { timeout: 120000 }, async () => {
  const ctx = await browser.newContext(PHONE);
  const page = await ctx.newPage();
  const id = await join(page, srv.url, 'Fay');
  const other = await wsClient(srv.addr, { client_id: id.client_id, token: id.token });
  // Kick (310 Hz) hard left, Snare (370 Hz) hard right, Bass (410 Hz) on but muted
  other.send({ type: 'subscribe', channels: [0, 1, 2], pans: { 0: -1, 1: 1 } });
  other.send({ type: 'toggle_mute', channel: 2, muted: true });
  await until(async () => (await page.getByRole('button', { name: 'Mute Bass' }).getAttribute('aria-pressed')) === 'true', 5000, 'mix set');

  // tap Listen; time to the first decoded audio
  const tapToAudio = await page.evaluate(async () => {
    const t0 = performance.now();
    document.getElementById('listen').click();
    for (;;) {
      const pc = window.monmix.listener.pc;
      if (pc) {
        let s = null;
        (await pc.getStats()).forEach((r) => {
          if (r.type === 'inbound-rtp' && r.kind === 'audio') s = r;
        });
        if (s && s.totalSamplesReceived > 0 && s.audioLevel > 0) return performance.now() - t0;
      }
      if (performance.now() - t0 > 10000) return -1;
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  assert.ok(tapToAudio > 0, 'audio within 10 s');
  console.log(`# bench tap_to_audio_ms ${tapToAudio.toFixed(0)}`);
  await until(() => page.evaluate(() => window.monmix.listener.pc?.connectionState === 'connected'), 5000, 'connected');
  await page.waitForTimeout(3000);
  const s = await inbound(page);
  assert.ok(s.packetsReceived > 200, `packets ${s.packetsReceived}`);
  assert.ok(s.audioLevel > 0, `audioLevel ${s.audioLevel}`);

  const sp = await spectrum(page);
  console.log(`# spectrum L ${sp.left} R ${sp.right}`);
  const [kick, snare, bass] = [0, 1, 2];
  assert.ok(sp.left[kick] > -50, `kick on the left: ${sp.left[kick]} dB`);
  assert.ok(sp.right[snare] > -50, `snare on the right: ${sp.right[snare]} dB`);
  assert.ok(sp.left[kick] - sp.right[kick] > 30, 'kick not on the right (stereo decoded)');
  assert.ok(sp.right[snare] - sp.left[snare] > 30, 'snare not on the left');
  assert.ok(sp.left[bass] < sp.left[kick] - 40 && sp.right[bass] < sp.right[snare] - 40, 'muted bass absent');
  for (const k of [3, 4, 5, 6, 7]) assert.ok(Math.max(sp.left[k], sp.right[k]) < sp.left[kick] - 40, `channel ${k} (off) absent`);

  await until(async () => /^\d+$/.test(await page.locator('#lat').textContent()), 5000, 'latency readout');
  await until(async () => /^\d/.test(await page.locator('#loss').textContent()), 5000, 'loss readout');
  assert.equal(await page.locator('#listen-state').textContent(), 'Listening');
  await shot(page, 'phone-listening');

  // jitter buffer after 10 s of listening: since the start, and over the last 5 s
  await page.waitForTimeout(Math.max(0, 5000 - 3000 - 1200 - tapToAudio));
  const j5 = await inbound(page);
  await page.waitForTimeout(5000);
  const j = await inbound(page);
  const load = (await import('node:os')).loadavg()[0].toFixed(1);
  console.log(
    `# bench jitter_buffer_ms ${((j.jb / j.n) * 1000).toFixed(1)} last5s_ms ${(((j.jb - j5.jb) / (j.n - j5.n)) * 1000).toFixed(1)} latency_readout_ms ${await page.locator('#lat').textContent()} lost ${j.lost} of ${j.packetsReceived} loadavg ${load}`,
  );

  // The page reports the figure it shows: /metrics has it for this client (the readout
  // moves every second, the report every 5 s: close, not equal).
  await until(async () => {
    const m = await (await fetch(`${srv.url}/metrics`)).text();
    const line = m.split('\n').find((l) => l.startsWith('monmix_client_latency_ms{'));
    const shown = Number(await page.locator('#lat').textContent());
    const v = line ? Number(line.split(' ').pop()) : NaN;
    return v > 0 && Math.abs(v - shown) <= Math.max(15, shown * 0.3);
  }, 12000, 'the latency the page shows reaches /metrics');
  // ... and the engineer's list, next to this musician: "♪ … · N ms · X % loss".
  const eng = await (await browser.newContext(TABLET)).newPage();
  await eng.goto(srv.url + '/engineer');
  await eng.getByLabel('Admin PIN or engineer token').fill(ADMIN_PIN);
  await eng.getByRole('button', { name: 'Sign in' }).click();
  const row = eng.locator('.cmeta').filter({ hasText: /♪/ });
  await until(async () => /· \d+ ms · [\d.]+ % loss/.test(await row.first().textContent()), 12000, 'latency and loss in the engineer list');
  await eng.close();

  // http://127.0.0.1 is a secure context: the keep-the-screen-on switch is offered and the
  // browser grants the lock (a LAN address needs https: tests/e2e/lan.test.mjs).
  await page.locator('#more-btn').click();
  assert.equal(await page.locator('#wake').isDisabled(), false);
  await page.locator('#wake').check();
  assert.equal(await page.evaluate(async () => (await navigator.wakeLock.request('screen').then((l) => (l.release(), 'ok'), (e) => e.name))), 'ok', 'wake lock granted');
  await page.keyboard.press('Escape');

  // server restart: the page reconnects WS and audio by itself
  const port = srv.port;
  await srv.kill();
  await page.locator('#banner').waitFor({ state: 'visible', timeout: 5000 });
  srv = await startServer(dir, port);
  await page.locator('#banner').waitFor({ state: 'hidden', timeout: 20000 });
  const before = (await inbound(page).catch(() => null))?.packetsReceived ?? 0;
  await until(async () => {
    const st = await inbound(page);
    return st && page.evaluate(() => window.monmix.listener.pc?.connectionState === 'connected') && st.audioLevel > 0 && st.packetsReceived > 50;
  }, 20000, `audio after restart (packets before ${before})`);
  const sp2 = await spectrum(page);
  assert.ok(sp2.left[kick] > -50 && sp2.left[kick] - sp2.right[kick] > 30, `same mix after restart: ${sp2.left}`);

  // stop
  await page.getByRole('button', { name: 'Stop' }).click();
  await until(() => page.evaluate(() => window.monmix.listener.pc === null), 3000, 'stopped');
  other.close();
  await ctx.close();
});

test('engineer cue: listen to a performer mix', { timeout: 60000 }, async () => {
  const pctx = await browser.newContext(PHONE);
  const phone = await pctx.newPage();
  const id = await join(phone, srv.url, 'Gus');
  const other = await wsClient(srv.addr, { client_id: id.client_id, token: id.token });
  other.send({ type: 'subscribe', channels: [3], pans: { 3: 1 } });
  await other.next('subscribed');
  const ectx = await browser.newContext(TABLET);
  const eng = await ectx.newPage();
  await eng.goto(srv.url + '/engineer');
  await eng.getByLabel('Admin PIN or engineer token').fill(ADMIN_PIN); // cue with welcome.cue_token
  await eng.getByRole('button', { name: 'Sign in' }).click();
  await eng.getByRole('button', { name: /Open Gus's mix/ }).click();
  await eng.getByRole('button', { name: /Cue/ }).click();
  await until(() => eng.evaluate(() => window.monmix.listener.pc?.connectionState === 'connected'), 10000, 'cue connected');
  await eng.waitForTimeout(1500);
  await until(async () => /listening/.test(await eng.getByRole('button', { name: /Open Gus's mix/ }).getAttribute('aria-label')), 5000, 'Gus shown as listening');
  await shot(eng, 'engineer-cue');
  const sp = await spectrum(eng);
  assert.ok(sp.right[3] > -50 && sp.right[3] - sp.left[3] > 30, `Keys on the right in the cue: L ${sp.left} R ${sp.right}`);
  other.close();
  await ectx.close();
  await pctx.close();
});
