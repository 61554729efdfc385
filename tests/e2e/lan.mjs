// A stage LAN for browser tests: the server in one network namespace, Chromium in another,
// joined by a veth pair with 10.x addresses, so the page loads from a LAN address as on a
// phone (not a secure context over http), never touching a real interface. Needs root.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as pjoin } from 'node:path';
import { chromium } from 'playwright-core';
import { BIN, CHROMIUM } from './helpers.mjs';

const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Creates namespaces `srv` and `ph` (phone) joined by veth: 10.99.N.1 and 10.99.N.2. */
export function createLan() {
  if (process.getuid?.() !== 0) return null;
  const n = (process.pid % 200) + 20;
  const lan = { srv: `monmix-srv-${process.pid}`, ph: `monmix-ph-${process.pid}`, serverIp: `10.99.${n}.1`, phoneIp: `10.99.${n}.2` };
  try {
    ip('netns', 'add', lan.srv);
    ip('netns', 'add', lan.ph);
    ip('link', 'add', `mmv${n}a`, 'type', 'veth', 'peer', 'name', `mmv${n}b`);
    ip('link', 'set', `mmv${n}a`, 'netns', lan.srv);
    ip('link', 'set', `mmv${n}b`, 'netns', lan.ph);
    for (const [ns, dev, addr] of [[lan.srv, `mmv${n}a`, lan.serverIp], [lan.ph, `mmv${n}b`, lan.phoneIp]]) {
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev);
      ip('-n', ns, 'link', 'set', dev, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
  } catch (e) {
    destroyLan(lan);
    throw new Error(`cannot build the test LAN: ${e.stderr || e.message}`);
  }
  return lan;
}

export function destroyLan(lan) {
  for (const ns of [lan?.srv, lan?.ph]) {
    if (ns) {
      try {
        ip('netns', 'del', ns);
      } catch {}
    }
  }
}

/** `monmix serve` in the server namespace on the LAN address: http :8080, https :8443 (self-signed). */
export function startLanServer(lan, dir) {
  return new Promise((res, rej) => {
    const args = ['netns', 'exec', lan.srv, BIN, 'serve', '--config', pjoin(dir, 'monmix.toml'), '--input', 'tones', '--channels', '8', '--http', `${lan.serverIp}:8080`, '--https', `${lan.serverIp}:8443`, '--tls-self-signed', '--osc', '127.0.0.1:0', '--state', pjoin(dir, 'state.json'), '--no-qr', '--no-mdns'];
    const proc = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MONMIX_LOG: 'warn' } });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      rej(new Error(`server did not start\n${err}`));
    }, 30000);
    proc.stderr.on('data', (d) => (err = (err + d).slice(-20000)));
    proc.stdout.on('data', (d) => {
      out += d;
      if (/monmix https on https:\/\//.test(out) && /monmix listening on http:\/\//.test(out)) {
        clearTimeout(timer);
        res({
          proc,
          http: `http://${lan.serverIp}:8080`,
          https: `https://${lan.serverIp}:8443`,
          cert: pjoin(dir, 'monmix-cert.pem'),
          log: () => err,
          kill: () =>
            new Promise((ok) => {
              if (proc.exitCode !== null) return ok();
              proc.once('exit', () => ok());
              proc.kill('SIGKILL');
            }),
        });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`server exited (${code})\n${err}`));
    });
  });
}

/**
 * Chromium inside the phone namespace, with its own HOME. `trust`: a PEM certificate put in
 * that HOME's NSS database as a trusted server certificate (what "install and trust the
 * certificate" does on a phone).
 */
export async function launchInLan(lan, { trust } = {}) {
  const home = mkdtempSync(pjoin(tmpdir(), 'monmix-lan-home-'));
  const nss = pjoin(home, '.pki', 'nssdb');
  mkdirSync(nss, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${nss}`, '-N', '--empty-password']);
  if (trust) execFileSync('certutil', ['-d', `sql:${nss}`, '-A', '-t', 'P,,', '-n', 'monmix', '-i', trust]);
  const wrapper = pjoin(home, 'chromium-in-lan');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${lan.ph} env HOME=${home} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const browser = await chromium.launch({
    executablePath: wrapper,
    headless: true,
    timeout: 30000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required', '--disable-dev-shm-usage'],
  });
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (...a) => {
    const ctx = await newContext(...a);
    await ctx.addInitScript(() => {
      globalThis.__MONMIX_TEST__ = true;
    });
    return ctx;
  };
  return browser;
}
