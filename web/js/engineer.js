// The engineer page: every client, their mixes, cue listening, input meters, join QR.
import { Conn, banner } from './conn.js';
import { Mixer, loadTaper } from './mixer.js';
import { $, h, toast, testHook } from './ui.js';
import { Listener } from './whep.js';

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
    $('login-err').textContent = m.code === 'rate_limited' ? 'Too many wrong PINs. Wait a minute.' : isToken(pin) ? 'Unknown engineer token.' : 'Wrong PIN.';
    $('pin').select();
    return;
  }
  toast(m.message || m.code, true);
});
conn.on('clients', (m) => {
  clients = m.clients;
  renderClients();
});
conn.on('client_mix', (m) => {
  if (m.client_id !== selected) return;
  mixer = new Mixer($('mixer'), channels, (op) => conn.send({ type: 'update_client_mix', client_id: selected, op }), { masterLabel: 'Master', whose: 'the' });
  mixer.setMix(m.mix);
  $('client-title').textContent = `${m.mix.name || 'Unnamed'} — mix`;
  testHook('mixer', mixer);
});
conn.on('param_sync', (m) => {
  if (m.client_id === selected && mixer) {
    mixer.apply(m.param, m.channel, m.value);
    if (m.param === 'name') $('client-title').textContent = `${m.value} — mix`;
  }
});
conn.on('renamed', (m) => {
  if (m.client_id === selected) $('client-title').textContent = `${m.name} — mix`;
});
conn.on('meters', (m) => {
  mixer?.setMeters(m.inputs, m.mix);
  inputLevels = m.inputs;
});

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
  if (!ms) return 'never';
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

function renderClients() {
  const ol = $('clients');
  ol.textContent = '';
  $('count').textContent = String(clients.length);
  if (!clients.length) ol.append(h('li', { class: 'empty' }, 'Nobody has joined yet. Show them the QR code.'));
  clients.forEach((c, i) => {
    const name = c.name || 'Unnamed';
    const status = c.listening ? 'listening' : c.online ? 'online' : 'offline';
    const li = h(
      'li',
      { class: `client ${status}${c.client_id === selected ? ' sel' : ''}`, 'data-client': c.client_id },
      h(
        'button',
        { class: 'client-main', 'aria-label': `Open ${name}'s mix (${status})`, 'aria-current': c.client_id === selected ? 'true' : false, onclick: () => open(c.client_id) },
        h('span', { class: 'cdot', 'aria-hidden': 'true' }),
        h('span', { class: 'cname' }, name),
        h('span', { class: 'cmeta' }, c.listening ? '♪ listening' : c.online ? 'online' : ago(c.last_seen), c.latency_ms != null ? ` · ${Math.round(c.latency_ms)} ms` : ''),
      ),
      h(
        'div',
        { class: 'cbtns' },
        h('button', { class: 'ghost sm', 'aria-label': `Move ${name} up`, disabled: i === 0, onclick: () => move(i, -1) }, '▲'),
        h('button', { class: 'ghost sm', 'aria-label': `Move ${name} down`, disabled: i === clients.length - 1, onclick: () => move(i, 1) }, '▼'),
        h('button', { class: 'ghost sm', 'aria-label': `Rename ${name}`, onclick: () => rename(c) }, '✎'),
        h('button', { class: 'ghost sm danger', 'aria-label': `Delete ${name}`, onclick: () => del(c) }, '✕'),
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
  const name = prompt('New name', c.name || '');
  if (name && name.trim()) conn.send({ type: 'update_client_mix', client_id: c.client_id, op: { type: 'rename', name: name.trim() } });
}

function del(c) {
  if (!confirm(`Delete ${c.name || 'this client'} and their mix? Their phone will join as someone new.`)) return;
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
  $('client-title').textContent = 'Pick a musician';
  $('client-actions').hidden = true;
  conn.send({ type: 'watch_client', client_id: null });
  stopCue();
}

// ---- cue ----
const cue = new Listener($('audio'), () => ({ clientId: cueFor, bearer: cueBearer }));
testHook('listener', cue);
cue.addEventListener('state', (e) => {
  const { state, detail } = e.detail;
  $('cue').setAttribute('aria-pressed', String(cue.want));
  $('cue').dataset.state = state;
  $('cue-state').textContent =
    state === 'idle' ? '' : state === 'error' && detail === 'not allowed' && cueBearer === pin && !isToken(pin) ? 'This server gave no cue token: sign in with an engineer token to cue' : state + (detail ? ` (${detail})` : '');
});
cue.addEventListener('stats', (e) => {
  const s = e.detail;
  $('cue-state').textContent = `listening · ${Math.round(10 + (s.rttMs ?? 0) / 2 + (s.jitterMs ?? 0))} ms · ${s.lossPct.toFixed(1)} % loss`;
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
    box.append(h('div', { class: 'inbar', title: c.name }, h('span', {}, c.name || `Ch ${c.index + 1}`), h('b', { class: 'bar', role: 'meter', 'aria-label': `${c.name} input level`, 'aria-valuemin': '0', 'aria-valuemax': '1' }, fill)));
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
