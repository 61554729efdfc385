// The engineer page: every client, their mixes, cue listening, input meters, join QR.
import { Conn, banner } from './conn.js';
import { Mixer, loadTaper } from './mixer.js';
import { $, h, toast, testHook } from './ui.js';
import { Listener, estimateLatency } from './whep.js';
import { t, tOr, lang, applyI18n, langSelect } from './i18n.js';

applyI18n();
langSelect($('lang'));

// Faders are drawn on the server's taper (the OSC one): fetch it before any strip exists.
await loadTaper();

const PIN_KEY = 'monmix.engineer.pin';
let pin = sessionStorage.getItem(PIN_KEY) || '';
let channels = [];
let clients = [];
let selected = null;
let mixer = null;
let cueFor = null;
let cueBearer = ''; // welcome.cue_token (WHEP bearer for any mix), else the sign-in token
let frameMs = 10; // welcome.frame_ms: the cue's latency readout uses the server's real frame
let outputs = [];
let outKey = ''; // a redraw closes an open select

// One field takes the admin PIN or a configured engineer token (long): the token also
// lets the cue listen over WHEP (protocol/whep.md: owner's token or an engineer token).
const isToken = (v) => v.length >= 16;
const conn = new Conn(() => (isToken(pin) ? { type: 'hello', engineer_token: pin } : { type: 'hello', admin_pin: pin }));
banner(conn, $('banner'));
testHook('conn', conn);

conn.on('welcome', (m) => {
  if (m.role !== 'engineer') return;
  sessionStorage.setItem(PIN_KEY, pin);
  cueBearer = m.cue_token || pin;
  frameMs = m.frame_ms;
  channels = m.channels;
  $('server-name').textContent = m.server;
  $('ws-dot').classList.add('up');
  $('login').hidden = true;
  $('eng').hidden = false;
  buildInputs();
  conn.send({ type: 'watch_meters', on: true });
  if (selected) open(selected);
  cue.restartSoon();
});
conn.on('down', () => $('ws-dot').classList.remove('up'));
conn.on('error', (m) => {
  if (m.ref_type === 'hello') {
    conn.stop();
    sessionStorage.removeItem(PIN_KEY);
    $('eng').hidden = true;
    $('login').hidden = false;
    $('banner').hidden = true;
    $('login-err').textContent = t(m.code === 'rate_limited' ? 'pinLock' : isToken(pin) ? 'badToken' : 'badPin');
    $('pin').select();
    return;
  }
  outKey = ''; // a refused assign_output
  renderOutputs();
  toast(tOr('e_' + m.code, t('e_any', m)), true);
});
conn.on('clients', (m) => {
  clients = m.clients;
  renderClients();
  renderOutputs();
});
conn.on('outputs', (m) => {
  outputs = m.outputs;
  renderOutputs();
});
conn.on('client_mix', (m) => {
  if (m.client_id !== selected) return;
  mixer = new Mixer($('mixer'), channels, (op) => conn.send({ type: 'update_client_mix', client_id: selected, op }), { whose: 'the' });
  mixer.setMix(m.mix);
  title(m.mix.name);
  testHook('mixer', mixer);
});
conn.on('param_sync', (m) => {
  if (m.client_id === selected && mixer) {
    mixer.apply(m.param, m.channel, m.value);
    if (m.param === 'name') title(m.value);
  }
});
conn.on('renamed', (m) => {
  if (m.client_id === selected) title(m.name);
});
conn.on('meters', (m) => {
  mixer?.setMeters(m.inputs, m.mix);
  inputLevels = m.inputs;
});

function title(name) {
  $('client-title').textContent = t('mixOf', { name: name || t('unnamed') });
}

// ---- login ----
$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  pin = $('pin').value;
  $('login-err').textContent = '';
  conn.start();
});
$('logout').addEventListener('click', () => {
  sessionStorage.removeItem(PIN_KEY);
  location.reload();
});

// ---- clients ----
function ago(ms) {
  if (!ms) return t('never');
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return t('now');
  if (s < 3600) return t('minAgo', { n: Math.round(s / 60) });
  if (s < 86400) return t('hAgo', { n: Math.round(s / 3600) });
  return new Date(ms).toLocaleDateString(lang);
}

function renderClients() {
  const ol = $('clients');
  ol.textContent = '';
  $('count').textContent = String(clients.length);
  if (!clients.length) ol.append(h('li', { class: 'empty' }, t('nobody')));
  clients.forEach((c, i) => {
    const name = c.name || t('unnamed');
    const N = { name };
    const status = c.listening ? 'listening' : c.online ? 'online' : 'offline';
    const li = h(
      'li',
      { class: `client ${status}${c.client_id === selected ? ' sel' : ''}`, 'data-client': c.client_id },
      h(
        'button',
        { class: 'client-main', 'aria-label': t('open', { name, status: t(status) }), 'aria-current': c.client_id === selected ? 'true' : false, onclick: () => open(c.client_id) },
        h('span', { class: 'cdot', 'aria-hidden': 'true' }),
        h('span', { class: 'cname' }, name),
        h('span', { class: 'cmeta' }, c.listening ? '♪ ' + t(status) : c.online ? t(status) : ago(c.last_seen), c.latency_ms != null ? ` · ${Math.round(c.latency_ms)} ms · ${c.loss_pct.toFixed(c.loss_pct < 10 ? 1 : 0)} ${t('loss')}` : ''),
      ),
      h(
        'div',
        { class: 'cbtns' },
        h('button', { class: 'ghost sm', 'aria-label': t('up', N), disabled: i === 0, onclick: () => move(i, -1) }, '▲'),
        h('button', { class: 'ghost sm', 'aria-label': t('down', N), disabled: i === clients.length - 1, onclick: () => move(i, 1) }, '▼'),
        h('button', { class: 'ghost sm', 'aria-label': t('ren', N), onclick: () => rename(c) }, '✎'),
        h('button', { class: 'ghost sm danger', 'aria-label': t('delC', N), onclick: () => del(c) }, '✕'),
      ),
    );
    ol.append(li);
  });
}

function move(i, d) {
  const order = clients.map((c) => c.client_id);
  [order[i], order[i + d]] = [order[i + d], order[i]];
  [clients[i], clients[i + d]] = [clients[i + d], clients[i]];
  renderClients();
  conn.send({ type: 'reorder_clients', order });
}

function rename(c) {
  const name = prompt(t('newName'), c.name || '');
  if (name && name.trim()) conn.send({ type: 'update_client_mix', client_id: c.client_id, op: { type: 'rename', name: name.trim() } });
}

function del(c) {
  if (!confirm(t('delCQ', { name: c.name || t('thisOne') }))) return;
  if (selected === c.client_id) close();
  conn.send({ type: 'delete_client', client_id: c.client_id });
}

function open(id) {
  if (cueFor && cueFor !== id) stopCue();
  selected = id;
  $('client-actions').hidden = false;
  conn.send({ type: 'watch_client', client_id: id });
  renderClients();
}

function close() {
  selected = null;
  mixer = null;
  $('mixer').textContent = '';
  $('client-title').textContent = t('pick');
  $('client-actions').hidden = true;
  conn.send({ type: 'watch_client', client_id: null });
  stopCue();
}

// ---- wired outputs ----
function renderOutputs() {
  const key = JSON.stringify([outputs, clients.map((c) => c.client_id + c.name)]);
  if (key === outKey) return;
  outKey = key;
  $('outs').hidden = !outputs.length;
  $('outputs').replaceChildren(
    ...outputs.map((o) => {
      const n = o.output;
      const label = t('outN', { n, dev: o.device, ch: o.channels.join('–') });
      const sel = h(
        'select',
        { id: 'out-' + n, 'data-output': n, 'aria-label': label, onchange: () => conn.send({ type: 'assign_output', output: n, mix: sel.value || null }) },
        h('option', { value: '' }, t('none')),
        h('option', { value: 'cue' }, t('cue')),
        ...clients.map((c) => h('option', { value: c.client_id }, c.name || t('unnamed'))),
        o.client_id || !o.mix || o.mix === 'cue' ? null : h('option', { value: o.mix, disabled: true }, t('waitFor', { name: o.mix })),
      );
      sel.value = o.client_id || o.mix || '';
      return h('li', { class: 'row' }, label, sel);
    }),
  );
}

// ---- cue ----
const cue = new Listener($('audio'), () => ({ clientId: cueFor, bearer: cueBearer }));
testHook('listener', cue);
cue.addEventListener('state', (e) => {
  const { state, detail } = e.detail;
  $('cue').setAttribute('aria-pressed', String(cue.want));
  $('cue').dataset.state = state;
  $('cue-state').textContent =
    state === 'idle' ? '' : state === 'error' && detail === 'denied' && cueBearer === pin && !isToken(pin) ? t('noCue') : t('s_' + state) + (detail ? ` (${tOr('d_' + detail, detail)})` : '');
});
cue.addEventListener('stats', (e) => {
  const s = e.detail;
  $('cue-state').textContent = `${t('listening')} · ${Math.round(estimateLatency(s, frameMs, conn.rtt).total)} ms · ${s.lossPct.toFixed(1)} ${t('loss')}`;
});
function stopCue() {
  cueFor = null;
  cue.stop();
}
$('cue').addEventListener('click', () => {
  if (cue.want) return stopCue();
  if (!selected) return;
  cueFor = selected;
  cue.start();
});

// ---- input meters ----
let inputLevels = null;
let bars = [];
function buildInputs() {
  const box = $('inputs');
  box.textContent = '';
  bars = channels.map((c) => {
    const fill = h('i');
    box.append(h('div', { class: 'inbar', title: c.name }, h('span', {}, c.name || t('ch', { n: c.index + 1 })), h('b', { class: 'bar', role: 'meter', 'aria-label': t('inLevel', { name: c.name }), 'aria-valuemin': '0', 'aria-valuemax': '1' }, fill)));
    return fill;
  });
}
function drawInputs() {
  requestAnimationFrame(drawInputs);
  if (!inputLevels) return;
  const L = inputLevels;
  inputLevels = null;
  L.forEach(([, peak], i) => {
    if (!bars[i]) return;
    const db = peak > 0 ? 20 * Math.log10(peak) : -90;
    bars[i].style.setProperty('--lvl', Math.max(0, Math.min(1, (db + 60) / 60)).toFixed(3));
    bars[i].parentElement.setAttribute('aria-valuenow', peak.toFixed(3));
  });
}
requestAnimationFrame(drawInputs);

// ---- QR ----
fetch('/api/status')
  .then((r) => r.json())
  .then((s) => {
    const url = s.join_url || location.origin + '/';
    $('join-url').textContent = url;
    $('join-url2').textContent = url;
  })
  .catch(() => {});
$('qr-btn').addEventListener('click', () => $('qr').showModal());
$('qr').addEventListener('click', (e) => e.target === $('qr') && $('qr').close());

setInterval(() => clients.length && renderClients(), 30000);
if (pin) conn.start();
else {
  $('login').hidden = false;
  $('pin').focus();
}
