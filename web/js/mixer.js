// Channel strips: on/off, vertical dB fader with meter, pan, mute, solo; a master fader.
// Used by the performer page (its own mix) and the engineer page (any client's mix).

import { h } from './ui.js';
import { t } from './i18n.js';

// Fader curve: the server's taper (GET /api/taper, as OSC): [[pos, dB], …] ascending;
// below the first point the gain falls linearly to 0.
let points = null;
let floorGain = 0;
/** Top of the travel in dB (+6.02: gain 2.0), set by setTaper. */
export let MAX_DB = NaN;

/** Installs the curve served by GET /api/taper. */
export function setTaper(t) {
  const ok = Array.isArray(t?.points) && t.points.length >= 2 && t.points.every((q, i) => i === 0 || (q[0] > t.points[i - 1][0] && q[1] > t.points[i - 1][1]));
  if (!ok) throw new Error('bad taper from the server');
  points = t.points;
  floorGain = 10 ** (points[0][1] / 20);
  MAX_DB = points[points.length - 1][1];
}

const TAPER_KEY = 'monmix.taper';
/** Fetches the curve (retrying; the last one seen is kept for a page opened offline). */
export async function loadTaper() {
  for (let i = 0; ; i++) {
    try {
      const r = await fetch('/api/taper', { cache: 'no-store', signal: AbortSignal.timeout(4000) });
      if (r.ok) {
        const t = await r.json();
        setTaper(t);
        try {
          localStorage.setItem(TAPER_KEY, JSON.stringify(t));
        } catch {}
        return;
      }
    } catch {}
    try {
      const saved = JSON.parse(localStorage.getItem(TAPER_KEY) || 'null');
      if (saved) return setTaper(saved);
    } catch {}
    await new Promise((res) => setTimeout(res, Math.min(5000, 250 * 2 ** i)));
  }
}

/** Fader position (0..1) -> dB (-Infinity at 0). */
export function posToDb(p) {
  const [p0] = points[0];
  if (!(p > 0)) return -Infinity;
  if (p < p0) return 20 * Math.log10((floorGain * p) / p0);
  for (let i = 1; i < points.length; i++) {
    const [p1, d1] = points[i];
    if (p <= p1) {
      const [pa, da] = points[i - 1];
      return da + ((p - pa) / (p1 - pa)) * (d1 - da);
    }
  }
  return MAX_DB;
}

/** dB -> fader position (0..1; above the top reads as 1). */
export function dbToPos(db) {
  if (!(db > -Infinity)) return 0;
  const [p0, d0] = points[0];
  if (db < d0) return (p0 * 10 ** (db / 20)) / floorGain;
  for (let i = 1; i < points.length; i++) {
    const [p1, d1] = points[i];
    if (db <= d1) {
      const [pa, da] = points[i - 1];
      return pa + ((db - da) / (d1 - da)) * (p1 - pa);
    }
  }
  return 1;
}

export const gainToDb = (g) => (g > 0 ? 20 * Math.log10(g) : -Infinity);
export const dbToGain = (db) => (db === -Infinity ? 0 : Math.min(2, Math.round(10 ** (db / 20) * 1e4) / 1e4));
export const fmtDb = (db) => (db === -Infinity || db < -89.5 ? '−∞' : (db > 0.05 ? '+' : db < -0.05 ? '−' : '') + Math.abs(db).toFixed(1));


/** Sends at most every `ms` while values keep coming; the last value is always sent. */
function throttle(fn, ms) {
  let last = 0;
  let timer = 0;
  let pending = null;
  const flush = () => {
    timer = 0;
    if (pending) {
      const a = pending;
      pending = null;
      last = performance.now();
      fn(...a);
    }
  };
  const t = (...a) => {
    pending = a;
    const wait = last + ms - performance.now();
    if (wait <= 0 && !timer) flush();
    else if (!timer) timer = setTimeout(flush, Math.max(0, wait));
  };
  t.flush = () => {
    clearTimeout(timer);
    flush();
  };
  return t;
}

/** A vertical fader in dB. onInput(gain, final) fires while dragging (throttled by caller). */
class Fader {
  constructor(label, onInput) {
    this.onInput = onInput;
    this.db = 0;
    this.dragging = false;
    this.el = h('div', {
      class: 'fader',
      role: 'slider',
      tabindex: '0',
      'aria-label': label,
      'aria-orientation': 'vertical',
      'aria-valuemin': '-90',
      'aria-valuemax': MAX_DB.toFixed(1),
      title: t('fader'),
    });
    this.meter = h('div', { class: 'meter', 'aria-hidden': 'true' }, h('div', { class: 'meter-fill' }), h('div', { class: 'meter-peak' }));
    const scale = h('div', { class: 'scale', 'aria-hidden': 'true' });
    for (const d of [6, 0, -10, -20, -40, -60]) {
      scale.append(h('span', { class: d === 0 ? 'zero' : '', style: `--p:${dbToPos(d).toFixed(4)}` }, d > 0 ? `+${d}` : String(d)));
    }
    this.cap = h('div', { class: 'cap', 'aria-hidden': 'true' });
    this.el.append(h('div', { class: 'slot' }), scale, this.meter, this.cap);
    this.el.addEventListener('pointerdown', (e) => this.down(e));
    this.el.addEventListener('keydown', (e) => this.key(e));
    this.el.addEventListener('dblclick', (e) => {
      e.preventDefault();
      this.commit(0, true);
    });
    this.render();
  }

  set(db) {
    if (this.dragging) return; // a remote change never fights a finger
    this.db = db;
    this.render();
  }

  render() {
    const pos = dbToPos(this.db);
    this.el.style.setProperty('--pos', pos.toFixed(4));
    // travel position on the shared taper (what an OSC /fader sends), for surfaces and tests
    this.el.dataset.pos = pos.toFixed(3);
    this.el.setAttribute('aria-valuenow', this.db === -Infinity ? '-90' : this.db.toFixed(1));
    this.el.setAttribute('aria-valuetext', this.db === -Infinity ? t('off') : `${fmtDb(this.db)} dB`);
  }

  commit(db, final) {
    this.db = db;
    this.render();
    this.onInput(db, final);
  }

  down(e) {
    if (e.button > 0) return;
    const now = performance.now();
    if (now - (this.lastTap || 0) < 320 && e.pointerType !== 'mouse') {
      this.lastTap = 0;
      this.commit(0, true);
      return;
    }
    this.lastTap = now;
    this.el.setPointerCapture(e.pointerId);
    this.el.focus({ preventScroll: true });
    this.dragging = true;
    this.el.classList.add('active');
    const travel = this.el.clientHeight - this.cap.offsetHeight;
    const startY = e.clientY;
    const startPos = dbToPos(this.db);
    let moved = false;
    const move = (ev) => {
      const dy = startY - ev.clientY;
      if (!moved && Math.abs(dy) < 3) return;
      moved = true;
      const fine = ev.shiftKey ? 0.25 : 1;
      let p = Math.min(1, Math.max(0, startPos + (dy / travel) * fine));
      let db = posToDb(p);
      if (Math.abs(p - dbToPos(0)) < 0.018) db = 0; // detent at 0 dB
      this.commit(db, false);
    };
    const up = () => {
      this.el.removeEventListener('pointermove', move);
      this.el.removeEventListener('pointerup', up);
      this.el.removeEventListener('pointercancel', up);
      this.dragging = false;
      this.el.classList.remove('active');
      if (moved) this.commit(this.db, true);
    };
    this.el.addEventListener('pointermove', move);
    this.el.addEventListener('pointerup', up);
    this.el.addEventListener('pointercancel', up);
  }

  key(e) {
    let db = this.db === -Infinity ? -91 : this.db;
    const step = e.shiftKey ? 0.1 : 1;
    switch (e.key) {
      case 'ArrowUp':
      case 'ArrowRight':
        db = db < -60 ? -60 : db + step;
        break;
      case 'ArrowDown':
      case 'ArrowLeft':
        db -= step;
        break;
      case 'PageUp':
        db = db < -60 ? -60 : db + 6;
        break;
      case 'PageDown':
        db -= 6;
        break;
      case 'Home':
        db = -Infinity;
        break;
      case 'End':
        db = MAX_DB;
        break;
      case '0':
      case 'Enter':
        db = 0;
        break;
      default:
        return;
    }
    e.preventDefault();
    if (db < -60 && db !== -Infinity && e.key !== 'Home') db = db < -89 ? -Infinity : db;
    db = Math.min(MAX_DB, Math.round(db * 10) / 10);
    if (db < -89.9) db = -Infinity;
    this.commit(db, true);
  }

  level(lin) {
    // lin: 0..~1 full scale; meter shows -60..+6 dBFS on the same taper as the fader
    const db = lin > 0 ? 20 * Math.log10(lin) : -120;
    this.meter.style.setProperty('--lvl', dbToPos(Math.max(-90, db)).toFixed(3));
    this.meter.classList.toggle('hot', db > -3);
  }
}

const norm = (mix) => ({
  channels: new Set(mix?.channels || []),
  gains: { ...(mix?.gains || {}) },
  pans: { ...(mix?.pans || {}) },
  mutes: { ...(mix?.mutes || {}) },
  solos: { ...(mix?.solos || {}) },
  master: mix?.master_gain ?? 1,
  name: mix?.name || '',
  presets: mix?.presets || [],
});

export class Mixer {
  /**
   * @param {HTMLElement} root where the strips go
   * @param {{index:number,name:string}[]} channels
   * @param {(op: object) => void} send sends one mix op (seed event)
   */
  constructor(root, channels, send, { masterLabel = t('master'), whose = 'my' } = {}) {
    this.whose = whose;
    this.root = root;
    this.channels = channels;
    this.sendRaw = send;
    this.mix = norm(null);
    this.strips = [];
    this.gainOut = new Map();
    this.levels = null;
    root.textContent = '';
    const rail = h('div', { class: 'rail', role: 'group', 'aria-label': t('channels') });
    for (const ch of channels) rail.append(this.strip(ch));
    this.masterStrip = this.makeMaster(masterLabel);
    root.append(rail, this.masterStrip);
    this.rail = rail;
    this.loop = this.loop.bind(this);
    requestAnimationFrame(this.loop);
  }

  send(op) {
    this.sendRaw(op);
  }

  throttled(key, fn) {
    if (!this.gainOut.has(key)) this.gainOut.set(key, throttle(fn, 33));
    return this.gainOut.get(key);
  }

  strip(ch) {
    const i = ch.index;
    const label = ch.name || t('ch', { n: i + 1 });
    const name = { name: label };
    const s = { i };
    const gainOut = this.throttled(`g${i}`, (gain) => this.send({ type: 'update_gain', channel: i, gain }));
    s.fader = new Fader(t('level', name), (db, final) => {
      const gain = dbToGain(db);
      this.mix.gains[i] = gain;
      s.readout.textContent = fmtDb(db);
      gainOut(gain);
      if (final) gainOut.flush();
    });
    s.on = h('button', { class: 'btn on', 'aria-pressed': 'false', 'aria-label': t('in_' + this.whose, name), onclick: () => this.toggle('on', i) }, t('on'));
    s.mute = h('button', { class: 'btn mute', 'aria-pressed': 'false', 'aria-label': t('mute', name), onclick: () => this.toggle('mute', i) }, t('m'));
    s.solo = h('button', { class: 'btn solo', 'aria-pressed': 'false', 'aria-label': t('solo', name), onclick: () => this.toggle('solo', i) }, t('s'));
    const panOut = this.throttled(`p${i}`, (pan) => this.send({ type: 'update_pan', channel: i, pan }));
    s.pan = h('input', { type: 'range', class: 'pan', min: '-100', max: '100', step: '1', value: '0', 'aria-label': t('pan', name) });
    s.panText = h('span', { class: 'pan-text', 'aria-hidden': 'true' }, t('pC'));
    const panSet = (final) => {
      let v = Number(s.pan.value);
      if (Math.abs(v) <= 4) v = 0;
      this.mix.pans[i] = v / 100;
      s.draggingPan = !final;
      this.paintPan(s, v / 100);
      panOut(v / 100);
      if (final) panOut.flush();
    };
    s.pan.addEventListener('input', () => panSet(false));
    s.pan.addEventListener('change', () => panSet(true));
    s.pan.addEventListener('dblclick', () => {
      s.pan.value = '0';
      panSet(true);
    });
    s.readout = h('output', { class: 'readout', 'aria-hidden': 'true' }, '0.0');
    s.el = h(
      'section',
      { class: 'strip', 'aria-label': label, 'data-channel': String(i) },
      h('header', { class: 'strip-head' }, h('span', { class: 'num' }, String(i + 1)), h('span', { class: 'name', title: label }, label)),
      s.on,
      h('div', { class: 'panbox' }, s.pan, s.panText),
      h('div', { class: 'faderbox' }, s.fader.el),
      s.readout,
      h('div', { class: 'ms' }, s.mute, s.solo),
    );
    this.strips[i] = s;
    return s.el;
  }

  makeMaster(label) {
    const out = this.throttled('master', (gain) => this.send({ type: 'update_master', gain }));
    const readout = h('output', { class: 'readout', 'aria-hidden': 'true' }, '0.0');
    this.master = new Fader(t('level', { name: label }), (db, final) => {
      const gain = dbToGain(db);
      this.mix.master = gain;
      readout.textContent = fmtDb(db);
      out(gain);
      if (final) out.flush();
    });
    this.masterReadout = readout;
    return h(
      'section',
      { class: 'strip master', 'aria-label': label },
      h('header', { class: 'strip-head' }, h('span', { class: 'name' }, label)),
      h('div', { class: 'faderbox' }, this.master.el),
      readout,
    );
  }

  paintPan(s, pan) {
    const v = Math.round(pan * 100);
    if (!s.draggingPan) s.pan.value = String(v);
    const n = { n: Math.abs(v) };
    s.panText.textContent = v === 0 ? t('pC') : t(v < 0 ? 'pL' : 'pR', n);
    s.pan.setAttribute('aria-valuetext', v === 0 ? t('centre') : t(v < 0 ? 'left' : 'right', n));
    s.pan.style.setProperty('--pan', ((v + 100) / 200).toFixed(3));
  }

  toggle(what, i) {
    const m = this.mix;
    if (what === 'on') {
      const on = !m.channels.has(i);
      on ? m.channels.add(i) : m.channels.delete(i);
      this.send({ type: 'set_on', channel: i, on });
    } else if (what === 'mute') {
      m.mutes[i] = !m.mutes[i];
      this.send({ type: 'toggle_mute', channel: i, muted: m.mutes[i] });
    } else {
      m.solos[i] = !m.solos[i];
      this.send({ type: 'toggle_solo', channel: i, soloed: m.solos[i] });
    }
    this.paint();
  }

  /** Whole mix (welcome, auto_resubscribed, preset, param_sync "mix"). */
  setMix(mix) {
    this.mix = norm(mix);
    this.paint(true);
  }

  /** One parameter changed elsewhere (param_sync) or confirmed (ack). */
  apply(param, channel, value) {
    const m = this.mix;
    switch (param) {
      case 'gain':
        m.gains[channel] = value;
        break;
      case 'pan':
        m.pans[channel] = value;
        break;
      case 'mute':
        m.mutes[channel] = value;
        break;
      case 'solo':
        m.solos[channel] = value;
        break;
      case 'master':
        m.master = value;
        break;
      case 'channels':
        m.channels = new Set(value);
        break;
      case 'name':
        m.name = value;
        return;
      case 'presets':
        m.presets = value;
        return;
      case 'mix':
        return this.setMix(value);
      default:
        return;
    }
    this.paint(true);
  }

  anySolo() {
    for (const c of this.mix.channels) if (this.mix.solos[c]) return true;
    return false;
  }

  audible(i) {
    const m = this.mix;
    return m.channels.has(i) && !m.mutes[i] && (!this.anySolo() || !!m.solos[i]);
  }

  paint(values = false) {
    const m = this.mix;
    const solo = this.anySolo();
    for (const s of this.strips) {
      if (!s) continue;
      const i = s.i;
      const on = m.channels.has(i);
      s.on.setAttribute('aria-pressed', String(on));
      s.mute.setAttribute('aria-pressed', String(!!m.mutes[i]));
      s.solo.setAttribute('aria-pressed', String(!!m.solos[i]));
      s.el.classList.toggle('off', !on);
      s.el.classList.toggle('muted', !!m.mutes[i]);
      s.el.classList.toggle('dimmed', on && solo && !m.solos[i]);
      if (values) {
        const db = gainToDb(m.gains[i] ?? 1);
        s.fader.set(db);
        if (!s.fader.dragging) s.readout.textContent = fmtDb(db);
        if (!s.draggingPan) this.paintPan(s, m.pans[i] ?? 0);
      }
    }
    if (values) {
      const db = gainToDb(m.master);
      this.master.set(db);
      if (!this.master.dragging) this.masterReadout.textContent = fmtDb(db);
    }
  }

  /** meters message: inputs [[rms, peak]...] pre-fader, mix [rms, peak]. */
  setMeters(inputs, mix) {
    this.levels = { inputs, mix, at: performance.now() };
  }

  loop() {
    if (!this.root.isConnected) return;
    requestAnimationFrame(this.loop);
    const L = this.levels;
    if (!L || L.drawn) return;
    L.drawn = true;
    const stale = performance.now() - L.at > 1000;
    for (const s of this.strips) {
      if (!s) continue;
      const lv = stale ? 0 : (L.inputs[s.i] || [0, 0])[1];
      // what this channel adds to my mix: input peak after my fader (0 when not audible)
      const post = this.audible(s.i) ? lv * (this.mix.gains[s.i] ?? 1) : 0;
      s.fader.level(post);
      s.el.classList.toggle('signal', lv > 0.003);
    }
    this.master.level(stale ? 0 : L.mix[1]);
  }
}
