// Pure functions of the page, run in Node: SDP munging, the fader's dB taper (the
// server's curve, fetched from a real server as the page does) and the language tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { mungeStereo } from '../../web/js/whep.js';
import { posToDb, dbToPos, dbToGain, gainToDb, fmtDb, setTaper } from '../../web/js/mixer.js';
import * as mixer from '../../web/js/mixer.js';
import { startServer, tempDir } from './helpers.mjs';

const OFFER = [
  'v=0',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126',
  'a=rtpmap:111 opus/48000/2',
  'a=rtcp-fb:111 transport-cc',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=rtpmap:63 red/48000/2',
  'a=fmtp:63 111/111',
  '',
].join('\r\n');

test('stereo=1 and sprop-stereo=1 go on the Opus fmtp line only', () => {
  const out = mungeStereo(OFFER);
  assert.match(out, /\r\na=fmtp:111 minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1\r\n/);
  assert.match(out, /\r\na=fmtp:63 111\/111\r\n/);
  assert.equal(mungeStereo(out), out, 'idempotent');
  assert.equal(out.split('\r\n').length, OFFER.split('\r\n').length);
});

test('an Opus rtpmap without fmtp gets one', () => {
  const sdp = 'v=0\na=rtpmap:109 opus/48000/2\na=rtpmap:0 PCMU/8000\n';
  assert.match(mungeStereo(sdp), /a=rtpmap:109 opus\/48000\/2\na=fmtp:109 stereo=1;sprop-stereo=1\n/);
});

test('fader taper from GET /api/taper: the OSC curve, 0 dB at 3/4, gain 2 at the top, monotonic', async () => {
  const srv = await startServer(tempDir());
  try {
    const res = await fetch(`${srv.url}/api/taper`);
    assert.equal(res.status, 200);
    setTaper(await res.json());
  } finally {
    await srv.stop();
  }
  // the break points of crate::taper (protocol/osc.md): the page has no table of its own
  assert.equal(posToDb(0.75), 0);
  assert.equal(dbToPos(0), 0.75);
  assert.equal(posToDb(0.5), -10);
  assert.equal(posToDb(0.25), -30);
  assert.equal(posToDb(0.05), -60);
  assert.ok(Math.abs(posToDb(0.025) - (-60 + 20 * Math.log10(0.5))) < 1e-9, 'linear gain below 0.05');
  assert.equal(posToDb(1), mixer.MAX_DB);
  assert.equal(dbToGain(mixer.MAX_DB), 2);
  assert.equal(dbToPos(12), 1);
  assert.equal(posToDb(0), -Infinity);
  assert.equal(dbToPos(-Infinity), 0);
  let prev = -Infinity;
  for (let p = 0.01; p <= 1; p += 0.01) {
    const db = posToDb(p);
    assert.ok(db > prev, `monotonic at ${p}`);
    assert.ok(Math.abs(dbToPos(db) - p) < 1e-9, `round trip at ${p}`);
    prev = db;
  }
  assert.throws(() => setTaper({ points: [[0.5, 0], [0.4, 1]] }), /bad taper/);
  assert.throws(() => setTaper({}), /bad taper/);
});

test('dB <-> wire gain (linear 0..2)', () => {
  assert.equal(dbToGain(0), 1);
  assert.equal(dbToGain(20 * Math.log10(2)), 2);
  assert.equal(dbToGain(-Infinity), 0);
  assert.equal(dbToGain(12), 2, 'clamped to the wire range');
  assert.equal(dbToGain(-6), 0.5012);
  assert.equal(gainToDb(0), -Infinity);
  assert.ok(Math.abs(gainToDb(0.5) + 6.0206) < 1e-4);
  assert.equal(fmtDb(-Infinity), '−∞');
  assert.equal(fmtDb(0), '0.0');
  assert.equal(fmtDb(3.04), '+3.0');
  assert.equal(fmtDb(-12), '−12.0');
});

test('i18n: the English and Spanish tables match key for key and placeholder for placeholder', async () => {
  const { STRINGS, t, lang } = await import('../../web/js/i18n.js');
  const { en, es } = STRINGS;
  assert.deepEqual(Object.keys(STRINGS).sort(), ['en', 'es']);
  assert.deepEqual(Object.keys(es).sort(), Object.keys(en).sort(), 'same keys');
  const vars = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
  for (const k of Object.keys(en)) {
    for (const l of ['en', 'es']) assert.ok(typeof STRINGS[l][k] === 'string' && STRINGS[l][k].trim() !== '', `${l}.${k} empty`);
    assert.deepEqual(vars(es[k]), vars(en[k]), `placeholders of ${k}`);
  }
  assert.equal(es.listen, 'Escuchar');
  assert.equal(es.stop, 'Detener');
  // No page in Node: English, placeholders filled, unknown ones left as they are.
  assert.equal(lang, 'en');
  assert.equal(t('mute', { name: 'Snare' }), 'Mute Snare');
  assert.equal(t('retry', { n: 2, s: 1.5 }), 'Reconnecting… (try 2, next in 1.5 s)');
  assert.equal(t('level', {}), '{name} level');
});

test('i18n: every key the pages name is in the tables', async () => {
  const { STRINGS } = await import('../../web/js/i18n.js');
  const web = new URL('../../web/', import.meta.url);
  const used = new Set();
  for (const f of ['index.html', 'engineer.html']) {
    for (const m of readFileSync(new URL(f, web), 'utf8').matchAll(/data-i18n(?:-[a-z-]+)?="([^"]+)"/g)) used.add(m[1]);
  }
  for (const f of readdirSync(new URL('js/', web))) {
    for (const m of readFileSync(new URL(`js/${f}`, web), 'utf8').matchAll(/\bt(?:Or)?\('(\w+)'\s*[,)]/g)) used.add(m[1]);
  }
  // keys built at run time: a prefix and the code it is given
  for (const k of ['s_idle', 's_connecting', 's_connected', 's_reconnecting', 's_retrying', 's_error', 'in_my', 'in_the']) used.add(k);
  assert.ok(used.size > 80, `${used.size} keys found`);
  for (const k of used) assert.ok(Object.hasOwn(STRINGS.en, k), `key ${k} used but not in the tables`);
});
