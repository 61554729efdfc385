// The engineer page: PIN login, the client list, editing someone's mix (their page
// follows), rename, reorder, delete, input meters, the join QR code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, startServer, tempDir, cleanup, PHONE, TABLET, ADMIN_PIN, shot, join, until } from './helpers.mjs';

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

test('QR endpoint and engineer route', { timeout: 20000 }, async () => {
  const res = await fetch(srv.url + '/api/join.svg');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /image\/svg\+xml/);
  assert.match(await res.text(), /<svg/);
  const eng = await fetch(srv.url + '/engineer');
  assert.match(await eng.text(), /Admin PIN/);
  const status = await (await fetch(srv.url + '/api/status')).json();
  assert.equal(status.join_url, `${srv.url}/`);
  for (const p of ['/manifest.webmanifest', '/sw.js', '/icons/icon-192.png', '/icons/icon-512.png', '/app.css', '/js/app.js']) {
    assert.equal((await fetch(srv.url + p)).status, 200, p);
  }
  assert.equal((await fetch(srv.url + '/nope.js')).status, 404);
});

test('engineer signs in, edits a performer mix, the performer page follows', { timeout: 90000 }, async () => {
  const pctx = await browser.newContext(PHONE);
  const phone = await pctx.newPage();
  const ana = await join(phone, srv.url, 'Ana');
  const bctx = await browser.newContext(PHONE);
  const phone2 = await bctx.newPage();
  await join(phone2, srv.url, 'Bruno');

  const ectx = await browser.newContext(TABLET);
  const eng = await ectx.newPage();
  await eng.goto(srv.url + '/engineer');
  await eng.getByLabel('Admin PIN or engineer token').fill('0000');
  await eng.getByRole('button', { name: 'Sign in' }).click();
  await eng.getByText('Wrong PIN.').waitFor();
  await eng.getByLabel('Admin PIN or engineer token').fill(ADMIN_PIN);
  await eng.getByRole('button', { name: 'Sign in' }).click();
  await eng.getByRole('button', { name: /Open Ana's mix/ }).waitFor();
  await eng.getByRole('button', { name: /Open Bruno's mix/ }).waitFor();
  assert.match(await eng.getByRole('button', { name: /Open Ana's mix/ }).getAttribute('aria-label'), /online/);

  await eng.getByRole('button', { name: /Open Ana's mix/ }).click();
  await eng.locator('#mixer .rail .strip').first().waitFor();
  await eng.getByRole('button', { name: 'Snare in the mix' }).click();
  await eng.getByRole('button', { name: 'Mute Snare' }).click();
  const fader = eng.getByRole('slider', { name: 'Snare level' });
  await fader.focus();
  for (let i = 0; i < 6; i++) await eng.keyboard.press('ArrowDown');
  await until(async () => (await phone.getByRole('button', { name: 'Snare in my mix' }).getAttribute('aria-pressed')) === 'true', 5000, 'phone: snare on');
  await until(async () => (await phone.getByRole('button', { name: 'Mute Snare' }).getAttribute('aria-pressed')) === 'true', 5000, 'phone: snare muted');
  await until(async () => Number(await phone.getByRole('slider', { name: 'Snare level' }).getAttribute('aria-valuenow')) === -6, 5000, 'phone: snare -6 dB');

  // the performer changes something: the engineer's view follows
  await phone.getByRole('button', { name: 'Kick in my mix' }).tap();
  await until(async () => (await eng.getByRole('button', { name: 'Kick in the mix' }).getAttribute('aria-pressed')) === 'true', 5000, 'engineer sees kick on');

  // input meters move
  await until(() => eng.evaluate(() => [...document.querySelectorAll('.inbar .bar')].every((b) => Number(b.getAttribute('aria-valuenow')) > 0.05)), 5000, 'input meters');
  await shot(eng, 'engineer-tablet');

  // rename from the engineer page
  eng.once('dialog', (d) => d.accept('Ana (bass)'));
  await eng.getByRole('button', { name: "Rename Ana" }).click();
  await until(async () => (await phone.locator('#me-name').textContent()) === 'Ana (bass)', 5000, 'phone renamed');

  // reorder: Bruno up
  await eng.getByRole('button', { name: 'Move Bruno up' }).click();
  await until(async () => (await eng.locator('.cname').allTextContents())[0] === 'Bruno', 5000, 'Bruno first');

  // delete Bruno: his phone rejoins as a new client with a new id
  const brunoId = await phone2.evaluate(() => JSON.parse(localStorage.getItem('monmix.identity')).client_id);
  eng.once('dialog', (d) => d.accept());
  await eng.getByRole('button', { name: 'Delete Bruno' }).click();
  await until(async () => !(await eng.locator('.cname').allTextContents()).includes('Bruno'), 5000, 'Bruno gone');

  // QR dialog
  await eng.getByRole('button', { name: 'Join QR' }).click();
  await eng.locator('#qr img').waitFor();
  await eng.keyboard.press('Escape');

  // the engineer page on a phone
  await eng.setViewportSize({ width: 390, height: 844 });
  await eng.waitForTimeout(300);
  await shot(eng, 'engineer-phone');
  assert.ok(ana.client_id && brunoId);
  await ectx.close();
  await pctx.close();
  await bctx.close();
});
