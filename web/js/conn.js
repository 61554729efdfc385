// WebSocket connection with hello, automatic reconnect (exponential backoff) and RTT.
// The server pings every 5 s and the browser answers (a throttled tab keeps its
// session); our own `ping` is only for the RTT readout.
import { t } from './i18n.js';

export class Conn extends EventTarget {
  /** @param {() => object} hello builds the hello message for each (re)connection */
  constructor(hello) {
    super();
    this.hello = hello;
    this.ws = null;
    this.ready = false; // welcome received on the current socket
    this.attempt = 0;
    this.timer = 0;
    this.rtt = null;
    this.stopped = false;
    this.everReady = false;
    this.pingTimer = 0;
    addEventListener('online', () => this.kick());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.kick();
    });
  }

  url() {
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }

  /** Reconnect now if we are waiting for a retry (network came back, tab visible). */
  kick() {
    if (this.stopped || (this.ws && this.ws.readyState <= 1)) return;
    clearTimeout(this.timer);
    this.open();
  }

  open() {
    clearTimeout(this.timer);
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      return this.retry();
    }
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify(this.hello()));
    ws.onmessage = (e) => {
      let m;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      if (m.type === 'welcome') {
        this.ready = true;
        this.attempt = 0;
        const again = this.everReady;
        this.everReady = true;
        this.emit('up', { again });
        this.ping();
      } else if (m.type === 'pong') {
        if (typeof m.t === 'number') this.rtt = performance.now() - m.t;
        clearTimeout(this.pingTimer);
        this.pingTimer = setTimeout(() => this.ping(), 2000);
      }
      this.emit('message', m);
      this.emit(m.type, m);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      const was = this.ready;
      this.ready = false;
      clearTimeout(this.pingTimer);
      this.emit('down', { code: e.code, was });
      this.retry();
    };
    ws.onerror = () => {};
  }

  retry() {
    if (this.stopped) return;
    const base = Math.min(8000, 400 * 2 ** this.attempt);
    this.attempt++;
    const delay = base / 2 + Math.random() * base / 2;
    this.emit('retry', { attempt: this.attempt, delay });
    this.timer = setTimeout(() => this.open(), delay);
  }

  ping() {
    this.send({ type: 'ping', t: performance.now() });
  }

  send(m) {
    if (!this.ready || !this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(m));
    return true;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  on(type, fn) {
    this.addEventListener(type, (e) => fn(e.detail));
  }
}

/** Shows/hides the connection banner. */
export function banner(conn, el) {
  let shownAt = 0;
  conn.on('down', () => {
    el.hidden = false;
    shownAt = Date.now();
    el.textContent = t('lost');
  });
  conn.on('retry', ({ attempt, delay }) => {
    if (!conn.everReady) el.hidden = false;
    el.textContent = t('retry', { n: attempt, s: Math.round(delay / 100) / 10 });
  });
  conn.on('up', () => {
    if (!shownAt && el.hidden) return;
    el.textContent = t('back');
    el.classList.add('ok');
    setTimeout(() => {
      if (conn.ready) {
        el.hidden = true;
        el.classList.remove('ok');
      }
    }, 800);
  });
}
