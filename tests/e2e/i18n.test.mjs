// Spanish and English (web/js/i18n.js): the main flows in Spanish — join, the strips'
// labels, Escuchar / Detener with audio arriving, the engineer's sign-in and musician row
// changing a phone's mix — and how the language is chosen: ?lang= (stored), the stored
// choice, the browser's locale; an unknown ?lang= is English and not stored.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, startServer, tempDir, cleanup, PHONE, TABLET, ADMIN_PIN, shot, until, inbound } from './helpers.mjs';

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

/** Joins as `name` on a page already showing the Spanish join form. */
async function unirse(page, name) {
  await page.getByLabel('Tu nombre', { exact: true }).fill(name);
  await page.getByRole('button', { name: 'Unirse a la banda' }).click();
  await page.locator('.rail .strip').first().waitFor({ timeout: 10000 });
  return page.evaluate(() => JSON.parse(localStorage.getItem('monmix.identity')));
}

const stored = (page) => page.evaluate(() => localStorage.getItem('monmix.lang'));

test('?lang=es: join, Spanish strips, Escuchar plays the mix, then Detener', { timeout: 90000 }, async () => {
  const ctx = await browser.newContext(PHONE);
  const page = await ctx.newPage();
  await page.goto(srv.url + '/?lang=es');
  await page.getByPlaceholder('p. ej. Ana — bajo').waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'es');
  assert.equal(await stored(page), 'es', '?lang= is stored');
  await shot(page, 'phone-join-es');
  await unirse(page, 'Lucía');

  // the strips' controls carry Spanish names
  for (const n of ['Kick', 'Snare', 'Vox Lead']) {
    await page.getByRole('slider', { name: `Nivel de ${n}` }).waitFor();
    await page.getByRole('button', { name: `Silenciar ${n}` }).waitFor();
    await page.getByRole('button', { name: `Solo ${n}` }).waitFor();
    await page.getByRole('button', { name: `${n} en mi mezcla` }).waitFor();
    await page.getByRole('slider', { name: `Paneo de ${n}` }).waitFor();
  }
  await page.getByRole('slider', { name: 'Nivel de General' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Preajustes' }).textContent(), 'Preajustes');
  await page.getByRole('button', { name: 'Ajustes', exact: true }).waitFor();
  assert.equal(await page.locator('#listen-state').textContent(), 'Toca ON en los canales que quieras oír');

  // Kick and Snare on (the Spanish buttons), hear them
  await page.getByRole('button', { name: 'Kick en mi mezcla' }).tap();
  await page.getByRole('button', { name: 'Snare en mi mezcla' }).tap();
  await until(async () => (await page.getByRole('button', { name: 'Snare en mi mezcla' }).getAttribute('aria-pressed')) === 'true', 5000, 'snare on');
  const listen = page.locator('#listen');
  assert.equal(await listen.textContent(), 'Escuchar');
  await page.getByRole('button', { name: 'Escuchar', exact: true }).tap();
  await until(() => page.evaluate(() => window.monmix.listener.pc?.connectionState === 'connected'), 10000, 'connected');
  await until(async () => {
    const s = await inbound(page);
    return s && s.packetsReceived > 100 && s.audioLevel > 0;
  }, 10000, 'packets and audio level');
  await until(async () => (await page.locator('#listen-state').textContent()) === 'Escuchando', 5000, 'state Escuchando');
  assert.equal(await listen.textContent(), 'Detener');
  await until(async () => /^\d+$/.test(await page.locator('#lat').textContent()), 5000, 'latency readout');
  assert.match(await page.locator('#lat').evaluate((b) => b.parentElement.title), /^trama del servidor \d+(\.\d+)? ms \+ codificador/);
  assert.match(await page.locator('#loss').evaluate((b) => b.parentElement.textContent), /% pérdida$/);
  await shot(page, 'phone-listening-es');

  await page.getByRole('button', { name: 'Detener', exact: true }).tap();
  await until(() => page.evaluate(() => window.monmix.listener.pc === null), 3000, 'stopped');
  assert.equal(await listen.textContent(), 'Escuchar');
  assert.equal(await page.locator('#listen-state').textContent(), 'Toca Escuchar para oír tu mezcla');

  // presets in Spanish
  await page.getByRole('button', { name: 'Preajustes' }).tap();
  await page.getByText('Aún no hay preajustes').waitFor();
  await page.getByLabel('Nombre del preajuste').fill('Tema 1');
  await page.getByRole('button', { name: 'Guardar', exact: true }).tap();
  await page.getByRole('button', { name: 'Cargar el preajuste Tema 1' }).waitFor();
  await ctx.close();
});

test('a browser in es-ES comes up in Spanish; English chosen in the settings stays after a reload', { timeout: 60000 }, async () => {
  const ctx = await browser.newContext({ ...PHONE, locale: 'es-ES' });
  const page = await ctx.newPage();
  await page.goto(srv.url + '/');
  assert.equal(await page.evaluate(() => navigator.language), 'es-ES');
  await page.getByRole('button', { name: 'Unirse a la banda' }).waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'es');
  assert.equal(await stored(page), null, 'nothing stored: the locale decided');
  await unirse(page, 'Marta');
  await page.getByRole('button', { name: 'Silenciar Bass' }).waitFor();

  // Ajustes → Idioma → English: the page comes back in English, same musician
  await page.getByRole('button', { name: 'Ajustes', exact: true }).tap();
  const sel = page.getByRole('combobox', { name: /Idioma/ });
  assert.equal(await sel.inputValue(), 'es');
  await shot(page, 'phone-settings-es');
  await sel.selectOption('en');
  await page.getByRole('button', { name: 'Mute Bass' }).waitFor({ timeout: 10000 });
  await page.getByRole('button', { name: 'Listen', exact: true }).waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
  assert.equal(await stored(page), 'en');
  assert.equal(await page.locator('#me-name').textContent(), 'Marta');

  // the stored choice beats the browser's locale
  await page.reload();
  await page.getByRole('button', { name: 'Mute Bass' }).waitFor();
  await page.getByRole('button', { name: 'Presets' }).waitFor();
  await page.getByRole('button', { name: 'Settings' }).tap();
  assert.equal(await page.getByRole('combobox', { name: /Language/ }).inputValue(), 'en');
  await ctx.close();
});

test('?lang=xx is English and not stored; the stored choice still holds without it', { timeout: 60000 }, async () => {
  const ctx = await browser.newContext({ ...PHONE, locale: 'es-ES' });
  const page = await ctx.newPage();
  await page.goto(srv.url + '/?lang=xx');
  await page.getByRole('button', { name: 'Join the band' }).waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
  assert.equal(await stored(page), null);
  await page.goto(srv.url + '/?lang=en');
  await page.getByRole('button', { name: 'Join the band' }).waitFor();
  assert.equal(await stored(page), 'en');
  await page.goto(srv.url + '/?lang=xx');
  await page.getByRole('button', { name: 'Join the band' }).waitFor();
  assert.equal(await stored(page), 'en', 'an unknown ?lang= leaves the stored choice alone');
  await page.goto(srv.url + '/');
  await page.getByRole('button', { name: 'Join the band' }).waitFor();
  await ctx.close();
});

test('engineer ?lang=es: sign-in and musician row in Spanish, a change reaches the phone', { timeout: 90000 }, async () => {
  const pctx = await browser.newContext(PHONE);
  const phone = await pctx.newPage();
  await phone.goto(srv.url + '/?lang=es');
  await unirse(phone, 'Ana');

  const ectx = await browser.newContext(TABLET);
  const eng = await ectx.newPage();
  await eng.goto(srv.url + '/engineer?lang=es');
  assert.equal(await eng.title(), 'monmix — técnico');
  await eng.getByLabel('PIN de administrador o token de técnico').fill('0000');
  await eng.getByRole('button', { name: 'Entrar' }).click();
  await eng.getByText('PIN incorrecto.').waitFor();
  await eng.getByLabel('PIN de administrador o token de técnico').fill(ADMIN_PIN);
  await eng.getByRole('button', { name: 'Entrar' }).click();

  const row = eng.getByRole('button', { name: /^Abrir la mezcla de Ana/ });
  await row.waitFor();
  assert.match(await row.getAttribute('aria-label'), /\(conectado\)$/);
  await eng.getByRole('button', { name: 'Borrar a Ana' }).waitFor();
  await eng.getByRole('button', { name: 'Renombrar a Ana' }).waitFor();
  await eng.getByRole('button', { name: 'Salir' }).waitFor();
  await eng.getByRole('list', { name: 'Músicos' }).waitFor();
  assert.equal(await eng.locator('#client-title').textContent(), 'Elige un músico');

  await row.click();
  await until(async () => (await eng.locator('#client-title').textContent()) === 'Mezcla de Ana', 5000, 'title');
  await eng.getByRole('button', { name: 'Snare en la mezcla' }).click();
  await eng.getByRole('button', { name: 'Silenciar Snare' }).click();
  const fader = eng.getByRole('slider', { name: 'Nivel de Snare' });
  await fader.focus();
  for (let i = 0; i < 3; i++) await eng.keyboard.press('ArrowDown');
  await until(async () => (await phone.getByRole('button', { name: 'Snare en mi mezcla' }).getAttribute('aria-pressed')) === 'true', 5000, 'phone: snare on');
  await until(async () => (await phone.getByRole('button', { name: 'Silenciar Snare' }).getAttribute('aria-pressed')) === 'true', 5000, 'phone: snare muted');
  await until(async () => Number(await phone.getByRole('slider', { name: 'Nivel de Snare' }).getAttribute('aria-valuenow')) === -3, 5000, 'phone: snare -3 dB');
  await shot(eng, 'engineer-es');

  // the header's select: English, still signed in (the PIN is kept for the tab)
  await eng.getByRole('combobox', { name: 'Idioma' }).selectOption('en');
  await eng.getByRole('button', { name: /^Open Ana's mix \(online\)/ }).waitFor({ timeout: 10000 });
  await eng.getByRole('button', { name: 'Sign out' }).waitFor();
  assert.equal(await eng.title(), 'monmix — engineer');
  await ectx.close();
  await pctx.close();
});
