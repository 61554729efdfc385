// Offline shell: network first (so an updated server is picked up at once), the cached
// copy when the network is gone. Live endpoints (/ws, /whep, /api/status, /metrics) are
// never cached; /api/taper (the fader curve) is, so the faders draw offline.
const CACHE = 'monmix-shell-v2';
const SHELL = [
  '/', '/engineer', '/app.css', '/manifest.webmanifest',
  '/js/app.js', '/js/engineer.js', '/js/conn.js', '/js/mixer.js', '/js/whep.js', '/js/ui.js', '/js/i18n.js',
  '/icons/icon.svg', '/icons/icon-192.png', '/icons/icon-512.png', '/api/taper',
];
self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener('activate', (e) => {
  e.waitUntil(
    caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k)))).then(() => self.clients.claim()),
  );
});
self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== location.origin) return;
  if (/^\/(ws|whep|api\/status|metrics|healthz|status|cert\.pem)(\/|$)/.test(url.pathname)) return;
  const net = fetch(e.request).then((res) => {
    if (res.ok) {
      const copy = res.clone();
      caches.open(CACHE).then((c) => c.put(e.request, copy));
    }
    return res;
  });
  const cached = () => caches.match(e.request, { ignoreSearch: true });
  // A Wi-Fi without a route can hang a fetch for long: after 3 s take the cached copy.
  const slow = new Promise((res) => setTimeout(res, 3000)).then(cached);
  e.respondWith(
    Promise.race([net, slow.then((r) => r || net)]).catch(() => cached().then((r) => r || Response.error())),
  );
});
