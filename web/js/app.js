// The performer page: join, my mix, listen, presets.
import { Conn, banner } from './conn.js';
import { Mixer, loadTaper } from './mixer.js';
import { $, h, toast, testHook } from './ui.js';
import { Listener, estimateLatency } from './whep.js';
import { t, tOr, applyI18n, langSelect } from './i18n.js';

applyI18n();
langSelect($('lang'));

// Faders are drawn on the server's taper (the OSC one): fetch it before any strip exists.
await loadTaper();

const KEY = 'monmix.identity';
const load = () => {
  try {
    return JSON.parse(localStorage.getItem(KEY)) || {};
  } catch {
    return {};
  }
};
const save = (v) => localStorage.setItem(KEY, JSON.stringify(v));

let ident = load();
let welcome = null;
let mixer = null;
let channelsKey = '';
let serverName = 'monmix';
let readyAt = 0; // first welcome, for the tests' time-to-interactive
const pending = new Map(); // ops made while offline, replayed after reconnect

const conn = new Conn(() => {
  const m = { type: 'hello' };
  if (ident.client_id) {
    m.client_id = ident.client_id;
    m.token = ident.token;
  }
  if (ident.name) m.name = ident.name;
  return m;
});
banner(conn, $('banner'));

function opKey(op) {
  return op.channel != null ? `${op.type}:${op.channel}` : op.type;
}

function send(op) {
  if (!conn.send(op)) pending.set(opKey(op), op);
}

conn.on('down', () => $('ws-dot').classList.remove('up'));

conn.on('welcome', (m) => {
  welcome = m;
  ident = { client_id: m.client_id, token: m.token || ident.token, name: m.mix?.name || ident.name };
  save(ident);
  serverName = m.server || 'monmix';
  $('ws-dot').classList.add('up');
  const key = JSON.stringify(m.channels);
  if (!mixer || key !== channelsKey) {
    channelsKey = key;
    mixer = new Mixer($('mixer'), m.channels, send);
    testHook('mixer', mixer);
  }
  mixer.setMix(m.mix);
  showName(m.mix?.name || ident.name);
  // The seed's way back in: subscribe without channels restores the stored mix.
  conn.send({ type: 'subscribe' });
  conn.send({ type: 'watch_meters', on: true });
  $('join').hidden = true;
  $('app').hidden = false;
  document.title = `monmix — ${m.mix?.name || ''}`;
  $('about').textContent = t('about', { server: serverName, n: m.channels.length, khz: m.sample_rate / 1000, ms: m.frame_ms, id: m.client_id });
  listener.restartSoon();
  if (!readyAt) testHook('readyAt', (readyAt = performance.now()));
});

function restoreMix(mix) {
  mixer.setMix(mix);
  presetsRender(mix.presets || []);
  // changes made while we were offline win over the stored mix
  for (const op of pending.values()) {
    conn.send(op);
    applyLocal(op);
  }
  pending.clear();
}

function applyLocal(op) {
  const map = { update_gain: ['gain', 'gain'], update_pan: ['pan', 'pan'], toggle_mute: ['mute', 'muted'], toggle_solo: ['solo', 'soloed'], update_master: ['master', 'gain'] };
  if (map[op.type]) mixer.apply(map[op.type][0], op.channel, op[map[op.type][1]]);
}

// First steps: nothing is in a new mix yet.
function firstSteps() {
  if (!mixer || listener.want) return;
  const none = mixer.mix.channels.size === 0;
  $('listen-state').textContent = t(none ? 'tapOn' : 's_idle');
}
// One handler per server message (protocol/websocket.md).
conn.on('auto_resubscribed', (m) => {
  restoreMix(m.mix);
  firstSteps();
  remember();
});
conn.on('subscribed', (m) => restoreMix(m.mix));
conn.on('preset_loaded', (m) => {
  mixer.setMix(m.mix);
  toast(t('loaded', { name: m.name }));
});
conn.on('param_sync', (m) => {
  setTimeout(firstSteps);
  if (m.client_id !== ident.client_id || !mixer) return;
  mixer.apply(m.param, m.channel, m.value);
  if (m.param === 'name') showName(m.value);
  if (m.param === 'presets') presetsRender(m.value);
  if (m.param === 'mix') {
    showName(m.value.name);
    presetsRender(m.value.presets || []);
  }
});
conn.on('channels_updated', (m) => {
  mixer?.apply('channels', null, m.channels);
  setTimeout(firstSteps);
});
conn.on('mute_updated', (m) => mixer?.apply('mute', m.channel, m.muted));
conn.on('solo_updated', (m) => mixer?.apply('solo', m.channel, m.soloed));
conn.on('renamed', (m) => showName(m.name));
conn.on('presets', (m) => presetsRender(m.presets));
conn.on('meters', (m) => mixer?.setMeters(m.inputs, m.mix));
conn.on('error', (m) => {
  if (m.ref_type === 'hello' && m.code === 'unauthorized' && ident.client_id) {
    // Our stored identity is no longer valid: start afresh under the same name.
    ident = { name: ident.name };
    save(ident);
    conn.ws?.close();
    return;
  }
  toast(tOr('e_' + m.code, t('e_any', m)), true);
});

function showName(name) {
  if (!name) return;
  $('me-name').textContent = name;
  document.title = `monmix — ${name}`;
  mediaSession();
}

// ---- join ----
$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('join-name').value.trim();
  if (!name) return;
  ident = { name };
  save(ident);
  conn.start();
});

// ---- listen ----
const audio = $('audio');
const listener = new Listener(audio, () => ({ clientId: ident.client_id, bearer: ident.token }));
testHook('conn', conn);
testHook('listener', listener);
const listenBtn = $('listen');
listener.addEventListener('state', (e) => {
  const { state, detail } = e.detail;
  const on = listener.want;
  listenBtn.setAttribute('aria-pressed', String(on));
  listenBtn.dataset.state = state;
  $('listen-label').textContent = t(on ? 'stop' : 'listen');
  $('listen-state').textContent = t('s_' + state) + (detail && detail !== 'blocked' ? ` (${tOr('d_' + detail, detail)})` : '');
  $('listen-state').dataset.state = state;
  if (detail === 'blocked') hint(`${t('blocked')} ${t('again')}`);
  if (state === 'idle') {
    $('lat').textContent = '—';
    $('loss').textContent = '—';
    hint('');
  }
  wake();
  mediaSession();
});
let silentSince = 0;
// What the page shows is also reported to the server every 5 s (the engineer's list,
// /metrics): the last latency and the mean loss since the last report.
const link = { latency: null, lossSum: 0, n: 0, sentAt: 0 };
function reportLink() {
  if (link.latency == null || !link.n) return;
  const ok = conn.send({ type: 'listen_stats', latency_ms: Math.round(link.latency * 10) / 10, loss_pct: Math.min(100, link.lossSum / link.n) });
  if (ok) Object.assign(link, { lossSum: 0, n: 0, sentAt: performance.now() });
}
listener.addEventListener('stats', (e) => {
  const s = e.detail;
  const { total, parts } = estimateLatency(s, welcome?.frame_ms ?? 10, conn.rtt);
  $('lat').textContent = String(Math.round(total));
  const f = (v) => v.toFixed(1);
  $('lat').parentElement.title = t('latParts', { f: parts.frame, e: parts.encoder, n: f(parts.network), j: f(parts.jitter) }) + (parts.output ? t('latOut', { o: f(parts.output) }) : '');
  $('loss').textContent = s.lossPct.toFixed(s.lossPct < 10 ? 1 : 0);
  link.latency = total;
  link.lossSum += s.lossPct;
  link.n += 1;
  if (performance.now() - link.sentAt >= 5000) reportLink();
  const expectSound = mixer && [...mixer.mix.channels].some((c) => mixer.audible(c)) && mixer.mix.master > 0;
  if (s.audioLevel > 0.0005 || !expectSound) silentSince = 0;
  else if (!silentSince) silentSince = performance.now();
  if (audio.paused) hint(`${t('paused')} ${t('again')}`);
  else if (silentSince && performance.now() - silentSince > 4000) hint(t('silent'));
  else if (s.audioLevel > 0.0005) hint('');
});
function hint(text) {
  $('hint').hidden = !text;
  $('hint').textContent = text;
}
listenBtn.addEventListener('click', () => {
  if (listener.want) listener.stop();
  else listener.start();
});
audio.addEventListener('pause', () => {
  if (listener.want && audio.srcObject) audio.play().catch(() => hint(t('again')));
});

// ---- media session + wake lock ----
function mediaSession() {
  if (!('mediaSession' in navigator)) return;
  const name = $('me-name').textContent;
  try {
    navigator.mediaSession.metadata = new MediaMetadata({
      title: `monmix — ${name}`,
      artist: serverName,
      artwork: [
        { src: '/icons/icon-192.png', sizes: '192x192', type: 'image/png' },
        { src: '/icons/icon-512.png', sizes: '512x512', type: 'image/png' },
      ],
    });
    navigator.mediaSession.playbackState = listener.want ? 'playing' : 'none';
    navigator.mediaSession.setActionHandler('play', () => listener.want || listener.start());
    navigator.mediaSession.setActionHandler('pause', () => listener.stop());
    navigator.mediaSession.setActionHandler('stop', () => listener.stop());
  } catch {}
}
let lock = null;
async function wake() {
  const want = $('wake').checked && listener.want && document.visibilityState === 'visible';
  if (want && !lock && 'wakeLock' in navigator) {
    try {
      lock = await navigator.wakeLock.request('screen');
      lock.addEventListener('release', () => (lock = null));
    } catch {}
  } else if (!want && lock) {
    lock.release().catch(() => {});
    lock = null;
  }
}
$('wake').checked = localStorage.getItem('monmix.wake') === '1';
// Over http from a LAN address the browser has no wake lock and no install: say why and
// where the https page is, instead of a switch that does nothing.
if (!isSecureContext || !('wakeLock' in navigator)) {
  $('wake').disabled = true;
  $('wake').checked = false;
  const n = $('secure-note');
  n.hidden = false;
  n.textContent = t('noSecure') + ' ';
  fetch('/api/status')
    .then((r) => r.json())
    .then(({ https_url: u }) => {
      if (!u) return n.append(t('noHttps'));
      const [a, b] = t('goSecure').split('{cert}');
      n.append(a, h('a', { href: '/cert.pem' }, t('cert')), b, ' ', h('a', { href: u }, u));
    })
    .catch(() => {});
}
$('wake').addEventListener('change', () => {
  localStorage.setItem('monmix.wake', $('wake').checked ? '1' : '0');
  wake();
});
document.addEventListener('visibilitychange', wake);
$('only-on').checked = localStorage.getItem('monmix.onlyOn') === '1';
const onlyOn = () => document.body.classList.toggle('only-on', $('only-on').checked);
$('only-on').addEventListener('change', () => {
  localStorage.setItem('monmix.onlyOn', $('only-on').checked ? '1' : '0');
  onlyOn();
});
onlyOn();

// ---- presets, rename, settings ----
function presetsRender(names) {
  const ul = $('preset-list');
  ul.textContent = '';
  if (!names.length) ul.append(h('li', { class: 'empty' }, t('noPresets')));
  for (const n of names) {
    ul.append(
      h(
        'li',
        {},
        h('span', { class: 'grow' }, n),
        h('button', { class: 'primary', 'aria-label': t('loadP', { name: n }), onclick: () => send({ type: 'load_preset', name: n }) }, t('load')),
        h('button', { class: 'ghost danger', 'aria-label': t('delP', { name: n }), onclick: () => confirm(t('delPQ', { name: n })) && send({ type: 'delete_preset', name: n }) }, t('del')),
      ),
    );
  }
}
presetsRender([]);
$('presets-btn').addEventListener('click', () => $('presets').showModal());
$('preset-save').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('preset-name').value.trim();
  if (!name) return;
  send({ type: 'save_preset', name });
  $('preset-name').value = '';
  toast(t('saved', { name }));
});
$('more-btn').addEventListener('click', () => $('settings').showModal());
$('me').addEventListener('click', () => {
  $('rename-name').value = $('me-name').textContent;
  $('rename').showModal();
});
$('rename-cancel').addEventListener('click', () => $('rename').close());
$('rename-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('rename-name').value.trim();
  if (name) {
    send({ type: 'rename', name });
    ident.name = name;
    save(ident);
    showName(name);
  }
  $('rename').close();
});
for (const d of document.querySelectorAll('dialog')) {
  d.addEventListener('click', (e) => e.target === d && d.close());
}

// ---- start ----
// The last known mix at once (also offline); the server's copy replaces it.
const LAST = 'monmix.last';
function remember() {
  if (!welcome || !mixer) return;
  const m = mixer.mix;
  const mix = { channels: [...m.channels], gains: m.gains, pans: m.pans, mutes: m.mutes, solos: m.solos, master_gain: m.master, name: $('me-name').textContent, presets: m.presets };
  localStorage.setItem(LAST, JSON.stringify({ client_id: ident.client_id, channels: welcome.channels, mix }));
}
addEventListener('pagehide', remember);
document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && remember());
try {
  const last = JSON.parse(localStorage.getItem(LAST) || 'null');
  if (last && last.client_id && last.client_id === ident.client_id) {
    channelsKey = JSON.stringify(last.channels);
    mixer = new Mixer($('mixer'), last.channels, send);
    testHook('mixer', mixer);
    mixer.setMix(last.mix);
    showName(last.mix.name || ident.name);
    presetsRender(last.mix.presets || []);
    $('app').hidden = false;
  }
} catch {}
if (ident.client_id || ident.name) conn.start();
else {
  $('join').hidden = false;
  $('join-name').focus();
}
if ('serviceWorker' in navigator && location.protocol !== 'file:') {
  navigator.serviceWorker.register('/sw.js').catch(() => {});
}
