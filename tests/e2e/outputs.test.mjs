// Wired outputs on the engineer page: each configured [[output]] is a row with a select of
// what it plays (nothing, the cue, a musician); a change goes to the server, every engineer
// gets the new list, and a new session shows it. Without [[output]] there is no section.
//
// An output needs a real playback device: cpal skips ALSA's `null` PCM (and it has no
// clock), so the outputs server plays into a private PipeWire (scripts/pipewire-session)
// through an ALSA PCM `ears` aimed at a null sink of that name, as README "Wired in-ears"
// sets up and tests/solo/pipewire.rs does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join as pjoin, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, onPath, startServer, tempDir, cleanup, TABLET, ADMIN_PIN, shot, until, wsClient, engineer } from './helpers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const OUTPUTS = `[[output]]
device = "ears"
channels = [1, 2]
mix = "cue"
clock = "adaptive"
[[output]]
device = "ears"
channels = [3]
mix = "Zoe"
clock = "adaptive"
`;
const ASOUNDRC = 'pcm.ears {\n  type pipewire\n  playback_node "ears"\n  hint { show on description "in-ear bus" }\n}\n';
const TOOLS = ['pipewire', 'wireplumber', 'pipewire-pulse', 'pw-cli', 'dbus-daemon'];

let browser;
let plainDir;
let plain; // no [[output]]
let run; // PipeWire's runtime directory
let pw;
let dir;
let srv; // two outputs on `ears`

/** A private PipeWire with a 3-channel null sink `ears` (clocked by PipeWire's timer). */
async function startPipeWire() {
  run = mkdtempSync(pjoin(tmpdir(), 'monmix-pw-'));
  pw = spawn(resolve(here, '../../scripts/pipewire-session'), [run], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('PipeWire did not start')), 20000);
    pw.stdout.on('data', (d) => String(d).includes('ready') && (clearTimeout(t), res()));
    pw.on('exit', (c) => rej(new Error(`pipewire-session exited with ${c}`)));
  });
  // pw-cli under `timeout`: a client of a wedged daemon has been seen to wait forever
  const pwcli = (...args) => execFileSync('timeout', ['-k', '2', '10', 'pw-cli', ...args], { env: { ...process.env, XDG_RUNTIME_DIR: run }, encoding: 'utf8' });
  pwcli('create-node', 'adapter', '{ factory.name=support.null-audio-sink node.name=ears media.class=Audio/Sink audio.channels=3 audio.position=[AUX0 AUX1 AUX2] object.linger=true }');
  await until(() => pwcli('ls', 'Node').includes('node.name = "ears"'), 15000, 'the ears sink');
}

before(async () => {
  browser = await launch();
  plainDir = tempDir();
  plain = await startServer(plainDir);
  const missing = TOOLS.find((t) => !onPath(t));
  if (missing) {
    if (process.env.CI === 'true') throw new Error(`the outputs test cannot run: ${missing} missing (scripts/setup test installs PipeWire)`);
    return;
  }
  await startPipeWire();
  dir = tempDir(OUTPUTS);
  writeFileSync(pjoin(dir, '.asoundrc'), ASOUNDRC);
  srv = await startServer(dir, 0, [], { HOME: dir, XDG_RUNTIME_DIR: run });
});
after(async () => {
  await browser?.close();
  await plain?.kill();
  await srv?.kill();
  if (pw && pw.exitCode === null) {
    await new Promise((res) => {
      const t = setTimeout(res, 5000);
      pw.once('exit', () => (clearTimeout(t), res()));
      pw.kill('SIGTERM');
    });
  }
  for (const d of [plainDir, dir, run]) if (d) cleanup(d);
});

async function signIn(page, url) {
  await page.goto(url + '/engineer');
  await page.getByLabel('Admin PIN or engineer token').fill(ADMIN_PIN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#eng').waitFor();
}

const picked = (sel) => sel.evaluate((s) => ({ value: s.value, text: s.selectedOptions[0]?.textContent, disabled: s.selectedOptions[0]?.disabled }));

test('no [[output]]: an empty list, and the engineer page has no outputs section', { timeout: 30000 }, async () => {
  const eng = await engineer(plain.addr);
  assert.deepEqual((await eng.next('outputs')).outputs, []);
  eng.close();
  const ctx = await browser.newContext(TABLET);
  const page = await ctx.newPage();
  await signIn(page, plain.url);
  await page.getByText('Nobody has joined yet. Show them the QR code.').waitFor();
  await page.waitForTimeout(300); // the outputs message follows clients
  assert.equal(await page.locator('#outs').isHidden(), true);
  assert.equal(await page.locator('#outputs select').count(), 0);
  await ctx.close();
});

test('wired outputs: cue from the config, assign Ana, then none; a new session shows each', { timeout: 60000 }, async (t) => {
  if (!srv) return t.skip('PipeWire missing');
  const ana = await wsClient(srv.addr, { name: 'Ana' });
  const anaId = ana.welcome.client_id;
  const eng = await engineer(srv.addr); // another engineer: gets every change too
  const first = await eng.next('outputs');
  assert.deepEqual(
    first.outputs.map((o) => [o.output, o.device, o.channels, o.mix, o.client_id]),
    [
      [1, 'ears', [1, 2], 'cue', null],
      [2, 'ears', [3], 'Zoe', null],
    ],
  );

  const ctx = await browser.newContext(TABLET);
  const page = await ctx.newPage();
  await signIn(page, srv.url);
  const one = page.getByRole('combobox', { name: 'Output 1 · ears 1–2' });
  await one.waitFor();
  assert.equal(await page.locator('#outs h2').textContent(), 'Wired outputs');
  assert.equal(await one.getAttribute('data-output'), '1');
  assert.equal(await one.getAttribute('id'), 'out-1');
  assert.deepEqual(await picked(one), { value: 'cue', text: '♪ Cue', disabled: false });
  await until(async () => (await one.locator('option').count()) === 3, 5000, 'Ana in the options');
  assert.deepEqual(await one.locator('option').evaluateAll((os) => os.map((o) => [o.value, o.textContent])), [
    ['', '— none —'],
    ['cue', '♪ Cue'],
    [anaId, 'Ana'],
  ]);
  // mono, and a name nobody has yet
  const two = page.locator('select[data-output="2"]');
  assert.equal(await two.getAttribute('aria-label'), 'Output 2 · ears 3');
  assert.deepEqual(await picked(two), { value: 'Zoe', text: 'waiting for Zoe', disabled: true });
  await shot(page, 'engineer-outputs');

  // Ana: the server's list comes back to every engineer and the page draws it
  const drawn = await one.elementHandle();
  await one.selectOption(anaId);
  const m = await eng.next((x) => x.type === 'outputs' && x.outputs[0].client_id === anaId);
  assert.equal(m.outputs[1].mix, 'Zoe', 'output 2 untouched');
  await until(() => drawn.evaluate((el) => !el.isConnected), 5000, 'the page redrawn from outputs');
  assert.deepEqual(await picked(one), { value: anaId, text: 'Ana', disabled: false });
  await page.reload();
  await one.waitFor();
  assert.deepEqual(await picked(one), { value: anaId, text: 'Ana', disabled: false });

  // a refusal is a toast and changes nothing
  await page.evaluate(() => window.monmix.conn.send({ type: 'assign_output', output: 99, mix: null }));
  await page.locator('.toast.bad.show').waitFor({ timeout: 5000 });
  assert.equal(await one.inputValue(), anaId);

  // none
  await one.selectOption('');
  await eng.next((x) => x.type === 'outputs' && x.outputs[0].mix === null && x.outputs[0].client_id === null);
  await page.reload();
  await one.waitFor();
  assert.deepEqual(await picked(one), { value: '', text: '— none —', disabled: false });
  eng.close();
  ana.close();
  await ctx.close();
});
