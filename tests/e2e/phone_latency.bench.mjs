// The phone path end to end, measured by a click (`make bench-phone`; a measurement, not a
// test: `node --test tests/e2e/` does not pick up a `.bench.mjs`): a click into a virtual
// stage input, through monmix and WHEP into Chromium, out of Chromium into a second
// PipeWire sink, detected on that sink's monitor. The same method as tests/solo/pipewire.rs
// `wired_output_latency_by_click`, so the page's latency readout can be checked against a
// real figure.
//
//   private PipeWire (scripts/pipewire-session): null sinks `stage` (AUX0 AUX1) and
//   `phone` (FL FR); pw-cat plays one sample near full scale every 250 ms on channel 1 of
//   `stage` (every 8th click left out: a 2 s pattern, so a delay over 250 ms cannot pass
//   for a short one); monmix captures `stage` through the ALSA PCM `stage`; Chromium plays
//   into the ALSA PCM `phone` (`--alsa-output-device=phone`, no `--mute-audio`, no
//   PulseAudio so it takes ALSA); one pw-record stream records stage's and phone's
//   monitors (left) in the same graph cycle.
//
// Prints, per frame length (FRAMES, default "10,5"):
//   # bench phone_latency frame_ms F measured_median_ms X min Y max Z clicks N readout_ms R
//     output_latency_ms O base_latency_ms B jitter_buffer_ms J loadavg L
// readout: the page's #lat over the recording (median), with its parts (the title);
// output/base latency: a fresh AudioContext({latencyHint: 'interactive'}) in the page (the
// page uses Chromium's `media-playout` stats instead: the context is another stream). Env: MONMIX_BIN, CHROMIUM (tests/e2e/helpers.mjs), FRAMES,
// RECORD_S (6), SETTLE_MS (3000), BENCH_KEEP=1 keeps the recordings' directory,
// MAX_READOUT_ERROR_MS (exit 1 when |readout - measured| is larger; phone_readout.test.mjs).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join as pjoin, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { BIN, CHROMIUM, CHROMIUM_ARGS, PHONE, cleanup, join, onPath, tempDir, until, wsClient, inbound } from './helpers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const RATE = 48000;
const PERIOD = 12000; // 250 ms
const FRAMES = (process.env.FRAMES || '10,5').split(',').map((s) => s.trim());
const RECORD_S = Number(process.env.RECORD_S || 6);
const SETTLE_MS = Number(process.env.SETTLE_MS || 3000);
// Set by phone_readout.test.mjs: fail when the page's readout is this far off the click.
const MAX_READOUT_ERROR_MS = Number(process.env.MAX_READOUT_ERROR_MS || 0);
const TOOLS = ['pipewire', 'wireplumber', 'pipewire-pulse', 'pw-cli', 'pw-cat', 'pw-record', 'pw-link', 'dbus-daemon', 'timeout'];
const ASOUNDRC =
  'pcm.stage {\n  type pipewire\n  capture_node "stage"\n  hint { show on description "stage bus" }\n}\n' +
  'pcm.phone {\n  type pipewire\n  playback_node "phone"\n  hint { show on description "phone out" }\n}\n';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error('#', ...a);

// Everything started here, stopped in `stopAll` (also on a signal or the watchdog).
const st = { run: null, home: null, pw: null, player: null, rec: null, srv: null, browser: null, stopping: false };

/** A short PipeWire tool under `timeout` (a client of a wedged daemon may wait forever). */
function pwtool(prog, ...args) {
  return execFileSync('timeout', ['-k', '2', '10', prog, ...args], { env: { ...process.env, XDG_RUNTIME_DIR: st.run }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

async function startPipeWire() {
  st.run = mkdtempSync(pjoin(tmpdir(), 'monmix-pw-'));
  st.pw = spawn(resolve(here, '../../scripts/pipewire-session'), [st.run], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('PipeWire did not start in 20 s')), 20000);
    st.pw.stdout.on('data', (d) => String(d).includes('ready') && (clearTimeout(t), res()));
    st.pw.on('exit', (c) => (clearTimeout(t), rej(new Error(`pipewire-session exited with ${c}`))));
  });
  const sink = (name, pos) =>
    pwtool('pw-cli', 'create-node', 'adapter', `{ factory.name=support.null-audio-sink node.name=${name} media.class=Audio/Sink audio.channels=${pos.length} audio.position=[${pos.join(' ')}] object.linger=true }`);
  sink('stage', ['AUX0', 'AUX1']);
  sink('phone', ['FL', 'FR']);
  await until(() => /node\.name = "stage"/.test(pwtool('pw-cli', 'ls', 'Node')) && /node\.name = "phone"/.test(pwtool('pw-cli', 'ls', 'Node')), 15000, 'the stage and phone sinks');
  // Whatever is not aimed at a sink (a PulseAudio client) lands on `phone`, not `stage`.
  try {
    pwtool('pw-metadata', '0', 'default.configured.audio.sink', '{ "name": "phone" }');
  } catch (e) {
    log(`pw-metadata: ${e.message.split('\n')[0]}`);
  }
}

/** A 2-channel 16-bit WAV with a plain PCM header (pw-cat takes EXTENSIBLE as surround). */
function clicksWav(path, secs) {
  const frames = secs * RATE;
  const b = Buffer.alloc(44 + frames * 4);
  b.write('RIFF', 0);
  b.writeUInt32LE(36 + frames * 4, 4);
  b.write('WAVEfmt ', 8);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(2, 22);
  b.writeUInt32LE(RATE, 24);
  b.writeUInt32LE(RATE * 4, 28);
  b.writeUInt16LE(4, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36);
  b.writeUInt32LE(frames * 4, 40);
  for (let n = 0; n < frames; n += PERIOD) if ((n / PERIOD) % 8 !== 7) b.writeInt16LE(30000, 44 + n * 4);
  writeFileSync(path, b);
  return path;
}

/** pw-cat plays `wav` into `stage` over and over (restarted when it ends) until stopAll. */
function play(wav) {
  const once = () => {
    if (st.stopping) return;
    st.player = spawn('pw-cat', ['-p', '--target', 'stage', '--channels', '2', '--channel-map', 'AUX0,AUX1', wav], {
      env: { ...process.env, XDG_RUNTIME_DIR: st.run },
      stdio: 'ignore',
    });
    st.player.on('exit', () => setTimeout(once, 200));
  };
  once();
}

/** monmix capturing `stage`; resolves with its address. */
function startMonmix(dir, frameMs) {
  return new Promise((res, rej) => {
    const args = ['serve', '--config', pjoin(dir, 'monmix.toml'), '--input', 'device:stage', '--frame-ms', frameMs, '--http', '127.0.0.1:0', '--osc', '127.0.0.1:0', '--state', pjoin(dir, 'state.json'), '--no-qr', '--no-mdns'];
    const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MONMIX_LOG: process.env.MONMIX_LOG || 'warn', HOME: dir, XDG_RUNTIME_DIR: st.run } });
    st.srv = proc;
    let out = '';
    let err = '';
    const t = setTimeout(() => rej(new Error(`monmix did not start in 30 s\n${err}`)), 30000);
    proc.stderr.on('data', (d) => (err = (err + d).slice(-20000)));
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/monmix listening on http:\/\/([^/\s]+)\//);
      if (m) {
        clearTimeout(t);
        res({ addr: m[1], url: `http://${m[1]}`, log: () => err });
      }
    });
    proc.on('error', (e) => (clearTimeout(t), rej(new Error(`cannot start ${BIN}: ${e.message}`))));
    proc.on('exit', (c) => (clearTimeout(t), rej(new Error(`monmix exited (${c}) before listening\n${err}`))));
  });
}

function stopProc(proc, sig = 'SIGTERM', ms = 5000) {
  return new Promise((res) => {
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return res();
    const t = setTimeout(() => (proc.kill('SIGKILL'), res()), ms);
    proc.once('exit', () => (clearTimeout(t), res()));
    proc.kill(sig);
  });
}

/** Chromium as the e2e tests start it, but heard: no --mute-audio, ALSA into `phone`. */
async function launchChromium() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    ignoreDefaultArgs: ['--mute-audio'],
    // Its ALSA reads $HOME/.asoundrc and reaches PipeWire through $XDG_RUNTIME_DIR; with no
    // PulseAudio server to talk to it falls back to ALSA, which --alsa-output-device aims.
    env: { ...process.env, HOME: st.home, XDG_RUNTIME_DIR: st.run, PULSE_SERVER: `unix:${pjoin(st.home, 'no-pulse')}` },
    args: [...CHROMIUM_ARGS, '--alsa-output-device=phone'],
  });
  st.browser = browser;
  return browser;
}

/** Chromium's stream into `phone`: linked by its ALSA PCM, or by hand when it is not. */
async function ensureChromiumOnPhone() {
  const linked = () => {
    const l = pwtool('pw-link', '-l');
    const m = l.match(/^phone:playback_FL\n((?:\s+\|<- .*\n)*)/m);
    return m && m[1].trim() ? m[1].trim().replace(/\s*\|<-\s*/g, ' ') : null;
  };
  try {
    const from = await until(linked, 8000, 'a stream linked into phone');
    log(`phone:playback_FL <- ${from}`);
    return;
  } catch {}
  // Not linked into phone (WirePlumber may have taken it to another sink): link it.
  const outs = pwtool('pw-link', '-o').split('\n').filter((p) => /(chrom|alsa_playback)[^:]*:output_F[LR]$/i.test(p));
  log(`no stream into phone; graph:\n${pwtool('pw-link', '-l')}\nnodes:\n${pwtool('pw-cli', 'ls', 'Node')}`);
  if (!outs.length) throw new Error('no Chromium stream in the graph (is it playing, into PipeWire?)');
  for (const p of outs) pwtool('pw-link', p, `phone:playback_${p.slice(-2)}`);
  log(`linked ${outs.join(', ')} to phone by hand`);
}

/**
 * One pw-record stream, linked to nothing (target 0), then to stage's and phone's left
 * monitors: both in the same graph cycle. Seen here (PipeWire 0.3.65): now and then a second
 * recorder in the same graph records only zeros though both links say "active"; so the
 * file must show stage's clicks within 1.5 s, else the recorder is started afresh (3 tries).
 */
async function startRecorder(dir) {
  const link = (a, b) => until(() => (pwtool('pw-link', a, b), true), 10000, `link ${a} -> ${b}`);
  for (let attempt = 1; ; attempt++) {
    const wav = pjoin(dir, `both${attempt}.wav`);
    st.rec = spawn('pw-record', ['--target', '0', '--channels', '2', '--format', 's16', '--rate', String(RATE), wav], { env: { ...process.env, XDG_RUNTIME_DIR: st.run }, stdio: 'ignore' });
    await link('stage:monitor_AUX0', 'pw-record:input_FL');
    await link('phone:monitor_FL', 'pw-record:input_FR');
    if (process.env.BENCH_DEBUG) log(`recorder ${attempt}: ${recorderState()}`);
    const heard = await until(() => existsSync(wav) && onsets(readWav(wav, 2)[0], 0.3).length > 0, 1500, 'stage clicks in the recording').catch(() => false);
    if (heard) return wav;
    log(`recorder ${attempt}: no stage click in 1.5 s (${recorderState()}), starting it again`);
    await stopProc(st.rec, 'SIGINT');
    st.rec = null;
    if (attempt === 3) throw new Error('pw-record records no clicks from the stage monitor');
    await sleep(300);
  }
}

/** pw-record's node and links, as the graph reports them (a diagnostic). */
function recorderState() {
  try {
    const dump = JSON.parse(pwtool('pw-dump'));
    const rec = dump.find((o) => o.type === 'PipeWire:Interface:Node' && o.info?.props?.['node.name'] === 'pw-record');
    const links = dump.filter((o) => o.type === 'PipeWire:Interface:Link' && o.info?.['input-node-id'] === rec?.id);
    const drivers = dump.filter((o) => o.type === 'PipeWire:Interface:Node' && o.info?.props?.['node.driver']).map((o) => `${o.info.props['node.name']} ${o.info.state}`);
    return `node ${rec?.id} ${rec?.info?.state}, links ${links.map((l) => `${l.info['output-node-id']}->${l.info['input-node-id']} ${l.info.state}`).join(', ')}, drivers ${drivers.join(', ')}`;
  } catch (e) {
    return `pw-dump: ${e.message.split('\n')[0]}`;
  }
}

/** The graph's audio streams and what latency each asked PipeWire for (a diagnostic line). */
function streams() {
  try {
    const dump = JSON.parse(pwtool('pw-dump'));
    return dump
      .filter((o) => o.type === 'PipeWire:Interface:Node' && /^Stream\//.test(o.info?.props?.['media.class'] || ''))
      .map((o) => {
        const p = o.info.props;
        return `${p['application.name'] || '?'}/${p['node.name']} ${p['media.class'].split('/')[1]} node.latency ${p['node.latency'] || '-'}`;
      })
      .join('; ');
  } catch (e) {
    return `pw-dump: ${e.message.split('\n')[0]}`;
  }
}

/** Interleaved 16-bit samples after the `data` chunk header, as floats per channel. */
function readWav(path, channels) {
  const b = readFileSync(path);
  const at = b.indexOf('data');
  const start = at < 0 ? b.length : at + 8;
  const n = Math.floor((b.length - start) / 2 / channels);
  const ch = Array.from({ length: channels }, () => new Float32Array(n));
  for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) ch[c][i] = b.readInt16LE(start + (i * channels + c) * 2) / 32768;
  return ch;
}

/** First sample over `thr` of each click, at least 125 ms apart. */
function onsets(x, thr) {
  const v = [];
  for (let i = 0; i < x.length; i++) if (Math.abs(x[i]) > thr && (!v.length || i - v[v.length - 1] > 6000)) v.push(i);
  return v;
}

const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];

/**
 * Per-click delays (samples): the lag is found modulo 250 ms from the first phone onset after
 * each click, then the multiple of 250 ms by the 2 s pattern (the left-out click), scoring
 * each candidate by the clicks and onsets it pairs, both ways, away from the edges.
 */
function delays(stage, phone, len) {
  const near = (arr, x, tol) => arr.find((u) => Math.abs(u - x) <= tol);
  const mod = stage.map((t) => phone.find((u) => u >= t && u - t < PERIOD)).map((u, i) => (u === undefined ? null : u - stage[i])).filter((d) => d !== null);
  if (!mod.length) return null;
  const d0 = median(mod);
  const edge = 4 * PERIOD;
  let best = null;
  for (let k = 0; k < 4; k++) {
    const L = d0 + k * PERIOD;
    const fwd = stage.filter((t) => t + L + edge < len && near(phone, t + L, 720)).length;
    const back = phone.filter((u) => u - L - edge > 0 && near(stage, u - L, 720)).length;
    const n = stage.filter((t) => t + L + edge < len).length + phone.filter((u) => u - L - edge > 0).length;
    const score = n ? (fwd + back) / n : 0;
    if (!best || score > best.score + 0.02) best = { L, score };
  }
  const d = stage.map((t) => near(phone, t + best.L, 2400)).map((u, i) => (u === undefined ? null : u - stage[i])).filter((x) => x !== null);
  return { d, lag: best.L, score: best.score };
}

async function measure(browser, frameMs) {
  const dir = tempDir();
  writeFileSync(pjoin(dir, '.asoundrc'), ASOUNDRC);
  const srv = await startMonmix(dir, frameMs);
  const ctx = await browser.newContext(PHONE);
  await ctx.addInitScript(() => {
    globalThis.__MONMIX_TEST__ = true; // the page's test hooks (window.monmix)
  });
  let other;
  try {
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    const id = await join(page, srv.url, 'Bench');
    // Channel 0 (the clicks) alone, hard left, as listen.test.mjs sets a mix.
    other = await wsClient(srv.addr, { client_id: id.client_id, token: id.token });
    other.send({ type: 'subscribe', channels: [0], pans: { 0: -1 } });
    await other.next('subscribed');
    await page.locator('#listen').click();
    await until(() => page.evaluate(() => window.monmix.listener.pc?.connectionState === 'connected'), 15000, 'WHEP connected');
    await until(async () => (await inbound(page))?.packetsReceived > 50, 10000, 'packets');
    await ensureChromiumOnPhone();
    await sleep(SETTLE_MS);
    log(`frame ${frameMs} ms: streams: ${streams()}`);

    const wav = await startRecorder(dir);
    const j0 = await inbound(page);
    const readouts = [];
    for (let i = 0; i < RECORD_S * 2; i++) {
      await sleep(500);
      const r = Number(await page.locator('#lat').textContent());
      if (r > 0) readouts.push(r);
    }
    const j1 = await inbound(page);
    const load = loadavg()[0].toFixed(2);
    await stopProc(st.rec, 'SIGINT');
    st.rec = null;
    const parts = await page.locator('#lat').evaluate((el) => el.parentElement.title);
    const out = await page.evaluate(async () => {
      const ac = new AudioContext({ latencyHint: 'interactive' });
      await ac.resume();
      await new Promise((r) => setTimeout(r, 300));
      const v = { output: ac.outputLatency, base: ac.baseLatency, rate: ac.sampleRate, state: ac.state };
      await ac.close();
      return v;
    });

    const [a, b] = readWav(wav, 2);
    const peakB = b.reduce((m, s) => Math.max(m, Math.abs(s)), 0);
    const ia = onsets(a, 0.3);
    const ib = peakB > 0.01 ? onsets(b, 0.3 * peakB) : [];
    const r = delays(ia, ib, a.length);
    const ms = (s) => (s / (RATE / 1000)).toFixed(2);
    const jb = j1 && j0 && j1.n > j0.n ? (((j1.jb - j0.jb) / (j1.n - j0.n)) * 1000).toFixed(1) : '?';
    log(`frame ${frameMs} ms: ${(a.length / RATE).toFixed(1)} s recorded, stage clicks ${ia.length}, phone onsets ${ib.length} (phone peak ${peakB.toFixed(3)}); readout parts: ${parts}; AudioContext ${JSON.stringify(out)}; loss ${j1?.lost ?? '?'} of ${j1?.packetsReceived ?? '?'}`);
    if (!r || r.d.length < 5) {
      log(`too few clicks matched: stage ${ia.slice(0, 12)} phone ${ib.slice(0, 12)}`);
      console.log(`# bench phone_latency frame_ms ${frameMs} measured_median_ms ? clicks ${r?.d.length ?? 0} readout_ms ${readouts.length ? median(readouts) : '?'} output_latency_ms ${(out.output * 1000).toFixed(1)} base_latency_ms ${(out.base * 1000).toFixed(1)} loadavg ${load}`);
      return false;
    }
    const d = [...r.d].sort((p, q) => p - q);
    log(`frame ${frameMs} ms: lag pattern score ${r.score.toFixed(2)}; delays ms ${r.d.map(ms).join(' ')}; readouts ${readouts.join(' ')}`);
    console.log(
      `# bench phone_latency frame_ms ${frameMs} measured_median_ms ${ms(median(d))} min ${ms(d[0])} max ${ms(d[d.length - 1])} clicks ${d.length} readout_ms ${readouts.length ? median(readouts) : '?'} output_latency_ms ${(out.output * 1000).toFixed(1)} base_latency_ms ${(out.base * 1000).toFixed(1)} jitter_buffer_ms ${jb} loadavg ${load}`,
    );
    if (MAX_READOUT_ERROR_MS && !(Math.abs(median(readouts) - median(d) / (RATE / 1000)) <= MAX_READOUT_ERROR_MS)) {
      log(`FAIL: the page reads ${median(readouts)} ms, the click took ${ms(median(d))} ms (allowed ±${MAX_READOUT_ERROR_MS})`);
      return false;
    }
    return true;
  } finally {
    other?.close();
    await ctx.close().catch(() => {});
    await stopProc(st.srv, 'SIGKILL');
    st.srv = null;
    if (process.env.BENCH_KEEP === '1') log(`kept ${dir}`);
    else cleanup(dir);
  }
}

async function stopAll() {
  if (st.stopping) return;
  st.stopping = true;
  await st.browser?.close().catch(() => {});
  await stopProc(st.rec, 'SIGINT');
  await stopProc(st.srv, 'SIGKILL');
  await stopProc(st.player, 'SIGTERM');
  await stopProc(st.pw, 'SIGTERM', 8000);
  for (const d of [st.home, st.run]) if (d) cleanup(d);
}

async function main() {
  const missing = TOOLS.find((t) => !onPath(t));
  if (missing) throw new Error(`${missing} missing (scripts/setup test installs PipeWire)`);
  if (!existsSync(BIN)) throw new Error(`${BIN} missing (cargo build --bin monmix)`);
  st.home = mkdtempSync(pjoin(tmpdir(), 'monmix-bench-'));
  writeFileSync(pjoin(st.home, '.asoundrc'), ASOUNDRC);
  await startPipeWire();
  play(clicksWav(pjoin(st.home, 'clicks.wav'), 60));
  const browser = await launchChromium();
  let ok = true;
  for (const f of FRAMES) ok = (await measure(browser, f)) && ok;
  return ok;
}

// Bounded: the whole run, whatever hangs.
const watchdog = setTimeout(() => {
  log('watchdog: 240 s, stopping');
  stopAll().finally(() => process.exit(2));
}, 240000);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => stopAll().finally(() => process.exit(130)));

let code = 0;
try {
  code = (await main()) ? 0 : 1;
} catch (e) {
  console.error(e);
  code = 1;
} finally {
  await stopAll();
  clearTimeout(watchdog);
}
process.exit(code);
