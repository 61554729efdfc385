// Pure functions of the page, run in Node: SDP munging and the fader's dB taper (the
// server's curve, fetched from a real server as the page does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
