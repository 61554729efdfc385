// Runs inside the phone's network namespace (firefox.test.mjs starts it with
// `ip netns exec`, since Firefox's WebDriver BiDi port is on that namespace's loopback):
// Firefox ESR, driven by puppeteer-core over WebDriver BiDi, joins the page at URL, sets
// its mix (kick hard left, snare hard right, bass muted), listens for 8 s and prints one
// JSON line: receiver stats, an in-page FFT of what it decodes, and the packets that
// arrived while it analysed (packets_end). Audio output goes to
// the null sink of the pulse server the test starts (PULSE_SERVER): without a sound server
// Firefox's AudioContext never runs or takes the browser down.
import puppeteer from 'puppeteer-core';
import { spectrumInPage } from '../e2e/spectrum.mjs';

const [url, tonesJson] = process.argv.slice(2);
const TONES = JSON.parse(tonesJson);
const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';

const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath: FIREFOX,
  headless: true,
  dumpio: !!process.env.FIREFOX_DUMPIO,
  extraPrefsFirefox: {
    'media.peerconnection.ice.loopback': true,
    'media.autoplay.default': 0,
    'media.autoplay.blocking_policy': 0,
    'media.navigator.permission.disabled': true,
  },
});
const inbound = (page) =>
  page.evaluate(async () => {
    const pc = window.monmix?.listener?.pc;
    if (!pc) return null;
    let s = null;
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio') s = r;
    });
    return s && { packets: s.packetsReceived, lost: s.packetsLost, jb: s.jitterBufferDelay, n: s.jitterBufferEmittedCount, state: pc.connectionState };
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const out = { ok: false };
try {
  const page = await browser.newPage();
  await page.evaluateOnNewDocument(() => {
    globalThis.__MONMIX_TEST__ = true;
  });
  await page.goto(url + '/');
  await page.locator('#join-name').fill('Fox');
  await page.locator('#join-form button[type=submit]').click();
  await page.waitForSelector('.rail .strip', { timeout: 15000 });
  await page.evaluate(() => {
    const c = window.monmix.conn;
    c.send({ type: 'subscribe', channels: [0, 1, 2], pans: { 0: -1, 1: 1 } });
    c.send({ type: 'toggle_mute', channel: 2, muted: true });
  });
  await page.locator('#listen').click();
  const t0 = Date.now();
  let s = null;
  while (Date.now() - t0 < 20000) {
    s = await inbound(page);
    if (s && s.state === 'connected' && s.packets > 100) break;
    await sleep(100);
  }
  out.connected_ms = Date.now() - t0;
  const a = await inbound(page);
  await sleep(8000);
  const b = await inbound(page);
  out.packets_8s = b.packets - a.packets;
  out.lost = b.lost;
  out.jitter_buffer_ms = ((b.jb - a.jb) / (b.n - a.n)) * 1000;
  out.latency_readout_ms = await page.$eval('#lat', (e) => e.textContent);
  const snapshot = () => page.evaluate(spectrumInPage, TONES);
  // Three 1.2 s snapshots: Firefox's playout into the null sink can glitch for a moment
  // (a glitch smears a tone across the spectrum); the test judges the cleanest.
  out.spectra = [];
  for (let i = 0; i < 3; i++) out.spectra.push(await snapshot());
  out.packets_end = (await inbound(page)).packets - b.packets;
  out.ok = true;
} catch (e) {
  out.error = String(e?.stack || e);
} finally {
  await browser.close().catch(() => {});
}
console.log(JSON.stringify(out));
