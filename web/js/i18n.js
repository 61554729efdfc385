// Every text of both pages, one table per language: t(key, {var}) in the scripts,
// data-i18n[-placeholder|-aria-label|-title|-alt]="key" in the HTML (applyI18n).

const en = {
  sub: 'Your own monitor mix, on this phone.',
  yourName: 'Your name',
  namePh: 'e.g. Ana — bass',
  joinBand: 'Join the band',
  phones: 'Use headphones or in-ears. Audio plays in this tab.',
  renameMix: 'Rename my mix',
  presets: 'Presets',
  settings: 'Settings',
  listen: 'Listen',
  stop: 'Stop',
  s_idle: 'Tap Listen to hear your mix',
  s_connecting: 'Connecting audio…',
  s_connected: 'Listening',
  s_reconnecting: 'Audio interrupted — reconnecting…',
  s_retrying: 'Audio lost — retrying…',
  s_error: 'Audio unavailable',
  d_nomix: 'no mix yet',
  d_failed: 'connection failed',
  d_closed: 'connection closed',
  d_lost: 'connection lost',
  d_denied: 'not allowed',
  d_nosuch: 'no such mix',
  latTitle: 'Estimated latency: server frame + network + jitter buffer',
  latParts: 'server frame {f} ms + encoder {e} ms + network {n} ms + jitter buffer {j} ms',
  latOut: ' + audio output {o} ms',
  loss: '% loss',
  lossTitle: 'Packet loss',
  myMix: 'My mix',
  close: 'Close',
  presetName: 'Preset name',
  presetPh: 'Name, e.g. Song 3 — ballad',
  save: 'Save',
  cancel: 'Cancel',
  wake: 'Keep the screen on while listening',
  noSecure: 'Keeping the screen on and installing need HTTPS.',
  goSecure: 'Trust the {cert} once, then open',
  cert: 'certificate',
  noHttps: 'This server has it off (README: HTTPS).',
  onlyOn: 'Show only channels in my mix',
  lang: 'Language',
  renameTitle: 'Rename yourself',
  tapOn: 'Tap ON on the channels you want to hear',
  loaded: 'Loaded “{name}”',
  saved: 'Saved “{name}”',
  about: '{server} · {n} channels · {khz} kHz · {ms} ms frames · id {id}',
  blocked: 'The browser blocked playback.',
  paused: 'Playback is paused by the browser.',
  again: 'Tap Listen again to start audio.',
  silent: 'No sound? Check the phone volume and the silent switch (iPhone), and that channels are ON.',
  noPresets: 'No presets yet. Save your mix for a song or a venue.',
  load: 'Load',
  loadP: 'Load preset {name}',
  del: 'Delete',
  delP: 'Delete preset {name}',
  delPQ: 'Delete preset “{name}”?',
  e_out_of_range: 'Not accepted: out of range, bad name or too many presets',
  e_rate_limited: 'Too many changes at once: slow down',
  e_unknown_client: 'That musician no longer exists',
  e_forbidden: 'Not allowed',
  e_any: 'The server refused that ({code})',
  lost: 'Connection lost — reconnecting…',
  retry: 'Reconnecting… (try {n}, next in {s} s)',
  back: 'Reconnected',
  // mixer strips
  fader: 'Drag up/down · double-tap: 0 dB · arrows: ±1 dB (Shift ±0.1)',
  off: 'off',
  master: 'Master',
  channels: 'Channels',
  ch: 'Ch {n}',
  level: '{name} level',
  in_my: '{name} in my mix',
  in_the: '{name} in the mix',
  on: 'ON',
  m: 'M',
  s: 'S',
  mute: 'Mute {name}',
  solo: 'Solo {name}',
  pan: '{name} pan',
  pC: 'C',
  pL: 'L{n}',
  pR: 'R{n}',
  centre: 'centre',
  left: '{n}% left',
  right: '{n}% right',
  // engineer
  engTitle: 'monmix — engineer',
  engineer: 'Engineer',
  engSub: "See and change every musician's mix.",
  pinLabel: 'Admin PIN or engineer token',
  signIn: 'Sign in',
  signOut: 'Sign out',
  joinQr: 'Join QR',
  musicians: 'Musicians',
  qrAlt: 'QR code to join this mixer',
  join: 'Join',
  scan: "Scan with a phone camera on the band's Wi-Fi.",
  inMeters: 'Input meters',
  pick: 'Pick a musician',
  cue: '♪ Cue',
  scanJoin: 'Scan to join',
  pinLock: 'Too many wrong PINs. Wait a minute.',
  badToken: 'Unknown engineer token.',
  badPin: 'Wrong PIN.',
  mixOf: '{name} — mix',
  unnamed: 'Unnamed',
  never: 'never',
  now: 'just now',
  minAgo: '{n} min ago',
  hAgo: '{n} h ago',
  nobody: 'Nobody has joined yet. Show them the QR code.',
  listening: 'listening',
  online: 'online',
  offline: 'offline',
  open: "Open {name}'s mix ({status})",
  up: 'Move {name} up',
  down: 'Move {name} down',
  ren: 'Rename {name}',
  delC: 'Delete {name}',
  newName: 'New name',
  thisOne: 'this client',
  delCQ: 'Delete {name} and their mix? Their phone will join as someone new.',
  noCue: 'This server gave no cue token: sign in with an engineer token to cue',
  inLevel: '{name} input level',
};
const es = {
  sub: 'Tu propia mezcla de monitor, en este teléfono.',
  yourName: 'Tu nombre',
  namePh: 'p. ej. Ana — bajo',
  joinBand: 'Unirse a la banda',
  phones: 'Usa auriculares o in-ears. El audio suena en esta pestaña.',
  renameMix: 'Renombrar mi mezcla',
  presets: 'Preajustes',
  settings: 'Ajustes',
  listen: 'Escuchar',
  stop: 'Detener',
  s_idle: 'Toca Escuchar para oír tu mezcla',
  s_connecting: 'Conectando el audio…',
  s_connected: 'Escuchando',
  s_reconnecting: 'Audio interrumpido — reconectando…',
  s_retrying: 'Audio perdido — reintentando…',
  s_error: 'Audio no disponible',
  d_nomix: 'aún no hay mezcla',
  d_failed: 'falló la conexión',
  d_closed: 'conexión cerrada',
  d_lost: 'conexión perdida',
  d_denied: 'sin permiso',
  d_nosuch: 'esa mezcla no existe',
  latTitle: 'Latencia estimada: trama del servidor + red + búfer de jitter',
  latParts: 'trama del servidor {f} ms + codificador {e} ms + red {n} ms + búfer de jitter {j} ms',
  latOut: ' + salida de audio {o} ms',
  loss: '% pérdida',
  lossTitle: 'Pérdida de paquetes',
  myMix: 'Mi mezcla',
  close: 'Cerrar',
  presetName: 'Nombre del preajuste',
  presetPh: 'Nombre, p. ej. Tema 3 — balada',
  save: 'Guardar',
  cancel: 'Cancelar',
  wake: 'Pantalla siempre encendida al escuchar',
  noSecure: 'Mantener la pantalla encendida e instalar requieren HTTPS.',
  goSecure: 'Confía una vez en el {cert} y abre',
  cert: 'certificado',
  noHttps: 'Este servidor no lo tiene activado (README: HTTPS).',
  onlyOn: 'Mostrar solo los canales de mi mezcla',
  lang: 'Idioma',
  renameTitle: 'Cambia tu nombre',
  tapOn: 'Toca ON en los canales que quieras oír',
  loaded: 'Cargado «{name}»',
  saved: 'Guardado «{name}»',
  about: '{server} · {n} canales · {khz} kHz · tramas de {ms} ms · id {id}',
  blocked: 'El navegador bloqueó la reproducción.',
  paused: 'El navegador pausó la reproducción.',
  again: 'Toca Escuchar otra vez para que suene.',
  silent: '¿No suena? Revisa el volumen del teléfono, el interruptor de silencio (iPhone) y que los canales estén en ON.',
  noPresets: 'Aún no hay preajustes. Guarda tu mezcla para un tema o una sala.',
  load: 'Cargar',
  loadP: 'Cargar el preajuste {name}',
  del: 'Borrar',
  delP: 'Borrar el preajuste {name}',
  delPQ: '¿Borrar el preajuste «{name}»?',
  e_out_of_range: 'No aceptado: fuera de rango, nombre no válido o demasiados preajustes',
  e_rate_limited: 'Demasiados cambios a la vez: más despacio',
  e_unknown_client: 'Ese músico ya no existe',
  e_forbidden: 'No permitido',
  e_any: 'El servidor lo rechazó ({code})',
  lost: 'Conexión perdida — reconectando…',
  retry: 'Reconectando… (intento {n}, el siguiente en {s} s)',
  back: 'Reconectado',
  fader: 'Arrastra arriba/abajo · doble toque: 0 dB · flechas: ±1 dB (Mayús ±0,1)',
  off: 'apagado',
  master: 'General',
  channels: 'Canales',
  ch: 'Canal {n}',
  level: 'Nivel de {name}',
  in_my: '{name} en mi mezcla',
  in_the: '{name} en la mezcla',
  on: 'ON',
  m: 'M',
  s: 'S',
  mute: 'Silenciar {name}',
  solo: 'Solo {name}',
  pan: 'Paneo de {name}',
  pC: 'C',
  pL: 'I{n}',
  pR: 'D{n}',
  centre: 'centro',
  left: '{n} % a la izquierda',
  right: '{n} % a la derecha',
  engTitle: 'monmix — técnico',
  engineer: 'Técnico',
  engSub: 'Mira y cambia la mezcla de cada músico.',
  pinLabel: 'PIN de administrador o token de técnico',
  signIn: 'Entrar',
  signOut: 'Salir',
  joinQr: 'Código QR',
  musicians: 'Músicos',
  qrAlt: 'Código QR para unirse a este mezclador',
  join: 'Unirse',
  scan: 'Escanéalo con la cámara del teléfono, en el wifi de la banda.',
  inMeters: 'Medidores de entrada',
  pick: 'Elige un músico',
  cue: '♪ Escucha',
  scanJoin: 'Escanea para unirte',
  pinLock: 'Demasiados PIN incorrectos. Espera un minuto.',
  badToken: 'Token de técnico desconocido.',
  badPin: 'PIN incorrecto.',
  mixOf: 'Mezcla de {name}',
  unnamed: 'Sin nombre',
  never: 'nunca',
  now: 'ahora mismo',
  minAgo: 'hace {n} min',
  hAgo: 'hace {n} h',
  nobody: 'Aún no se ha unido nadie. Enséñales el código QR.',
  listening: 'escuchando',
  online: 'conectado',
  offline: 'desconectado',
  open: 'Abrir la mezcla de {name} ({status})',
  up: 'Subir a {name}',
  down: 'Bajar a {name}',
  ren: 'Renombrar a {name}',
  delC: 'Borrar a {name}',
  newName: 'Nombre nuevo',
  thisOne: 'este músico',
  delCQ: '¿Borrar a {name} y su mezcla? Su teléfono entrará como alguien nuevo.',
  noCue: 'Este servidor no da token de escucha: entra con un token de técnico',
  inLevel: 'Nivel de entrada de {name}',
};
export const STRINGS = { en, es };

const KEY = 'monmix.lang';
const known = (l) => Object.hasOwn(STRINGS, l);
function store(l) {
  try {
    localStorage.setItem(KEY, l);
  } catch {}
}

function pick() {
  if (typeof document === 'undefined') return 'en'; // Node (the unit tests)
  const q = new URLSearchParams(location.search).get('lang');
  if (q != null) return known(q) ? (store(q), q) : 'en';
  let s;
  try {
    s = localStorage.getItem(KEY);
  } catch {}
  return known(s) ? s : /^es\b/i.test(navigator.language) ? 'es' : 'en';
}

/** The page's language: a key of STRINGS. */
export const lang = pick();

/** The text of `key` in the page's language, `{name}` replaced from `vars`. */
export function t(key, vars) {
  const s = STRINGS[lang][key] ?? key;
  return vars ? s.replace(/\{(\w+)\}/g, (m, k) => vars[k] ?? m) : s;
}

/** t(key) if the table has it, else `fallback` (a server's or the browser's own text). */
export const tOr = (key, fallback) => (Object.hasOwn(en, key) ? t(key) : fallback);

/** Fills the marked elements under `root` and sets the document's lang. */
export function applyI18n(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const a of ['placeholder', 'aria-label', 'title', 'alt']) {
    for (const el of root.querySelectorAll(`[data-i18n-${a}]`)) el.setAttribute(a, t(el.getAttribute(`data-i18n-${a}`)));
  }
}

/** A language <select>: shows the current one; a change is stored and reloads the page. */
export function langSelect(sel) {
  sel.value = lang;
  sel.onchange = () => {
    store(sel.value);
    const u = new URL(location.href);
    u.searchParams.delete('lang'); // the stored choice takes over
    location.replace(u);
  };
}
