// The page as a phone on the stage Wi-Fi sees it: loaded from the server's LAN address
// (the server in one network namespace, Chromium in another, over a veth pair).
// - over http: join and Listen work (WebRTC over the LAN), the page is not a secure
//   context, and the settings say why "keep the screen on" is unavailable and point to
//   the HTTPS set-up instead of offering a switch that does nothing;
// - over https with the server's self-signed certificate trusted (as a phone that
//   installed /cert.pem): a secure context, the service worker registers, the page loads
//   offline, the wake-lock switch is offered, and Listen works;
// - over https without trusting it: the browser refuses, as README says.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir, cleanup, PHONE, until } from './helpers.mjs';
import { createLan, destroyLan, startLanServer, launchInLan } from './lan.mjs';

let lan;
let dir;
let srv;
const browsers = [];
before(async () => {
  lan = createLan();
  if (!lan) {
    if (process.env.CI === 'true') throw new Error('the LAN browser test needs root (network namespaces)');
    return;
  }
  dir = tempDir();
  srv = await startLanServer(lan, dir);
});
after(async () => {
  for (const b of browsers) await b.close().catch(() => {});
  await srv?.kill();
  destroyLan(lan);
  if (dir) cleanup(dir);
});

async function phonePage(opts) {
  const b = await launchInLan(lan, opts);
  browsers.push(b);
  const ctx = await b.newContext(PHONE);
  return { ctx, page: await ctx.newPage() };
}

/** Joins as `name` and listens; resolves once audio arrives over the LAN. */
async function joinAndListen(page, url, name) {
  await page.goto(url + '/');
  await page.locator('#join-name').fill(name);
  await page.locator('#join-form button[type=submit]').click();
  await page.locator('.rail .strip').first().waitFor({ timeout: 10000 });
  await page.locator('#listen').click();
  await until(
    () =>
      page.evaluate(async () => {
        const pc = window.monmix.listener.pc;
        if (!pc || pc.connectionState !== 'connected') return false;
        let n = 0;
        (await pc.getStats()).forEach((r) => {
          if (r.type === 'inbound-rtp' && r.kind === 'audio') n = r.packetsReceived;
        });
        return n > 50;
      }),
    20000,
    `audio over the LAN (${url})`,
  );
}

test('lan http: listen works; no secure context, and the page says why', { timeout: 120000 }, async (t) => {
  if (!lan) return t.skip('not root');
  const { page } = await phonePage();
  await joinAndListen(page, srv.http, 'Ana');
  assert.equal(await page.evaluate(() => window.isSecureContext), false);
  await page.locator('#more-btn').click();
  const wake = page.locator('#wake');
  assert.equal(await wake.isDisabled(), true, 'keep-the-screen-on is not offered where it cannot work');
  const note = page.locator('#secure-note');
  await note.waitFor({ state: 'visible' });
  assert.equal(await note.locator(`a[href="${srv.https}/"]`).count(), 1, 'points to the https address');
  assert.equal(await note.locator('a[href$="/cert.pem"]').count(), 1, 'offers the certificate');
});

test('lan https, certificate trusted: secure context, service worker, offline page, wake lock, listen', { timeout: 120000 }, async (t) => {
  if (!lan) return t.skip('not root');
  const { ctx, page } = await phonePage({ trust: srv.cert });
  await joinAndListen(page, srv.https, 'Bo');
  assert.equal(await page.evaluate(() => window.isSecureContext), true);
  assert.equal(await page.evaluate(async () => !!(await navigator.serviceWorker.ready).active), true, 'service worker active');
  await page.locator('#more-btn').click();
  assert.equal(await page.locator('#wake').isDisabled(), false, 'keep-the-screen-on offered');
  assert.equal(await page.evaluate(() => navigator.wakeLock.request('screen').then((l) => (l.release(), 'ok'), (e) => e.name)), 'ok', 'wake lock granted');
  assert.equal(await page.locator('#secure-note').isVisible(), false);
  // Offline once loaded: the service worker serves the page.
  await ctx.setOffline(true);
  await page.reload();
  await until(() => page.evaluate(() => !document.getElementById('app').hidden || !document.getElementById('join').hidden), 10000, 'the page renders offline');
  assert.ok(await page.evaluate(() => !!navigator.serviceWorker.controller), 'controlled by the service worker');
  await ctx.setOffline(false);
});

test('lan https, certificate not trusted: the browser refuses', { timeout: 60000 }, async (t) => {
  if (!lan) return t.skip('not root');
  const { page } = await phonePage();
  await assert.rejects(page.goto(srv.https + '/'), /ERR_CERT_AUTHORITY_INVALID/);
});
