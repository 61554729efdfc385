// Shared by the browser tests: a real `monmix serve --input tones` on 127.0.0.1, a
// headless Debian chromium driven by playwright-core, and a Node WebSocket client.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join as pjoin, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = process.env.MONMIX_BIN || pjoin(process.env.CARGO_TARGET_DIR || pjoin(root, 'target'), 'debug', 'monmix');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SHOTS = pjoin(root, 'target', 'screenshots');
export const ADMIN_PIN = '2468';
export const ENGINEER_TOKEN = 'eng-token-0123456789';
export const NAMES = ['Kick', 'Snare', 'Bass', 'Keys', 'Gtr L', 'Gtr R', 'Vox Lead', 'Click'];
// tones input: channel k = 10·p Hz, p the k-th prime from 31
export const TONES = [310, 370, 410, 430, 470, 530, 590, 610];

/** A directory with the test config; `extra`: more TOML appended to it (e.g. `[[output]]`s). */
/** True when program `t` is on PATH (the PipeWire tests skip without their tools). */
export const onPath = (t) => (process.env.PATH || '').split(delimiter).some((d) => existsSync(pjoin(d, t)));

export function tempDir(extra = '') {
  const dir = mkdtempSync(pjoin(tmpdir(), 'monmix-e2e-'));
  writeFileSync(
    pjoin(dir, 'monmix.toml'),
    `[server]\nname = "Rehearsal room"\n[audio]\nchannel_names = ${JSON.stringify(NAMES)}\n[security]\nadmin_pin = "${ADMIN_PIN}"\nengineer_tokens = ["${ENGINEER_TOKEN}"]\n[state]\ndebounce_ms = 10\n${extra}`,
  );
  return dir;
}

/**
 * Starts the server; resolves once it prints its address. `port` 0 = ephemeral; `extra`:
 * more CLI args; `env`: more environment (e.g. HOME and XDG_RUNTIME_DIR for an ALSA device).
 */
export function startServer(dir, port = 0, extra = [], env = {}) {
  return new Promise((res, rej) => {
    const args = ['serve', '--config', pjoin(dir, 'monmix.toml'), '--input', 'tones', '--channels', '8', '--http', `127.0.0.1:${port}`, '--osc', '127.0.0.1:0', '--state', pjoin(dir, 'state.json'), '--no-qr', ...extra];
    const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MONMIX_LOG: process.env.MONMIX_LOG || 'warn', ...env } });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      rej(new Error(`server did not start in 30 s\n${err}`));
    }, 30000);
    proc.stderr.on('data', (d) => (err = (err + d).slice(-20000)));
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/monmix listening on http:\/\/([^/\s]+)\//);
      if (m) {
        clearTimeout(timer);
        const addr = m[1];
        res({
          proc,
          addr,
          port: Number(addr.split(':').pop()),
          url: `http://${addr}`,
          dir,
          log: () => err,
          /** `host:port` of the OSC socket, once the server printed it. */
          oscAddr: () => (out.match(/monmix osc on udp:\/\/(\S+)/) || [])[1],
          kill: () => killProc(proc, 'SIGKILL'),
          stop: () => killProc(proc, 'SIGTERM'),
        });
      }
    });
    proc.on('error', (e) => {
      clearTimeout(timer);
      rej(new Error(`cannot start ${BIN}: ${e.message} (cargo build --bin monmix first)`));
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`server exited (${code}) before listening\n${err}`));
    });
  });
}

function killProc(proc, sig) {
  return new Promise((res) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return res();
    const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
    proc.once('exit', () => {
      clearTimeout(t);
      res();
    });
    proc.kill(sig);
  });
}

/**
 * Starts chromium. Every context it makes asks the pages for their test hooks
 * (`window.monmix`, web/js/ui.js `testHook`), which a musician's page does not carry.
 */
/** What every test's Chromium runs with (headless in a container, media without prompts). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  '--use-fake-ui-for-media-stream',
  '--disable-dev-shm-usage',
];

export async function launch() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    args: CHROMIUM_ARGS,
  });
  const newContext = browser.newContext.bind(browser);
  /** A context as a musician's phone has it: no test hooks asked for. */
  browser.newPlainContext = newContext;
  browser.newContext = async (...args) => {
    const ctx = await newContext(...args);
    await ctx.addInitScript(() => {
      globalThis.__MONMIX_TEST__ = true;
    });
    return ctx;
  };
  return browser;
}

export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
export const TABLET = { viewport: { width: 1024, height: 768 }, deviceScaleFactor: 1, hasTouch: true };

export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: pjoin(SHOTS, `${name}.png`) });
}

/** A protocol client from Node: `next(pred)` waits for the first matching message. */
export function wsClient(addr, hello) {
  return new Promise((res, rej) => {
    const ws = new WebSocket(`ws://${addr}/ws`);
    const queue = [];
    const waiters = [];
    ws.on('message', (data) => {
      const m = JSON.parse(String(data));
      const i = waiters.findIndex((w) => w.pred(m));
      if (i >= 0) {
        const [w] = waiters.splice(i, 1);
        clearTimeout(w.timer);
        w.res(m);
      } else queue.push(m);
    });
    ws.on('error', rej);
    const c = {
      ws,
      send: (m) => ws.send(JSON.stringify(m)),
      next(pred, ms = 5000) {
        const f = typeof pred === 'string' ? (m) => m.type === pred : pred;
        const i = queue.findIndex(f);
        if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]);
        return new Promise((ok, bad) => {
          const w = { pred: f, res: ok };
          w.timer = setTimeout(() => {
            waiters.splice(waiters.indexOf(w), 1);
            bad(new Error(`no message matching ${pred} within ${ms} ms`));
          }, ms);
          waiters.push(w);
        });
      },
      close: () => ws.close(),
    };
    ws.on('open', async () => {
      c.send({ type: 'hello', ...hello });
      try {
        c.welcome = await c.next('welcome');
        res(c);
      } catch (e) {
        rej(e);
      }
    });
  });
}

export const engineer = (addr) => wsClient(addr, { admin_pin: ADMIN_PIN });

/** Polls `fn` until it returns a truthy value. */
export async function until(fn, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

export function cleanup(dir) {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {}
}

/** Joins as `name` on a fresh page; resolves when the strips are there. */
export async function join(page, url, name) {
  await page.goto(url + '/');
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Join the band' }).click();
  await page.locator('.rail .strip').first().waitFor({ timeout: 10000 });
  return page.evaluate(() => JSON.parse(localStorage.getItem('monmix.identity')));
}

/** The page listener's `inbound-rtp` audio stats (packets, level, jitter buffer, loss), or null. */
export function inbound(page) {
  return page.evaluate(async () => {
    const pc = window.monmix.listener.pc;
    if (!pc) return null;
    let s = null;
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio') s = r;
    });
    return s && { packetsReceived: s.packetsReceived, audioLevel: s.audioLevel, jb: s.jitterBufferDelay, n: s.jitterBufferEmittedCount, lost: s.packetsLost, samples: s.totalSamplesReceived };
  });
}

/** One OSC message (string and float32 arguments) in a UDP datagram to `addr` (`host:port`). */
export async function oscSend(addr, address, ...args) {
  const pad = (b) => Buffer.concat([b, Buffer.alloc(4 - (b.length % 4))]);
  const str = (s) => pad(Buffer.from(s, 'utf8'));
  let tags = ',';
  const parts = [];
  for (const a of args) {
    if (typeof a === 'string') {
      tags += 's';
      parts.push(str(a));
    } else {
      tags += 'f';
      const b = Buffer.alloc(4);
      b.writeFloatBE(a);
      parts.push(b);
    }
  }
  const msg = Buffer.concat([str(address), str(tags), ...parts]);
  const i = addr.lastIndexOf(':');
  const sock = dgram.createSocket(addr.startsWith('[') ? 'udp6' : 'udp4');
  await new Promise((res, rej) => sock.send(msg, Number(addr.slice(i + 1)), addr.slice(0, i).replace(/^\[|\]$/g, ''), (e) => (e ? rej(e) : res())));
  sock.close();
}
