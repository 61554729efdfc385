// WHEP player (RFC 9725): recvonly stereo Opus played through an <audio> element (it
// keeps playing with a phone's screen off; WebAudio only analyses, elsewhere).

/** Adds stereo=1;sprop-stereo=1 to the Opus fmtp line(s) of an SDP offer. */
export function mungeStereo(sdp) {
  for (const [, pt] of sdp.matchAll(/^a=rtpmap:(\d+) opus\/48000(?:\/2)?\r?$/gim)) {
    const re = new RegExp(`^(a=fmtp:${pt} .*?)(\\r?)$`, 'm');
    sdp = re.test(sdp)
      ? sdp.replace(re, (_, l, cr) => l + (/[ ;]\s*stereo=/.test(l) ? '' : ';stereo=1') + (/sprop-stereo=/.test(l) ? '' : ';sprop-stereo=1') + cr)
      : sdp.replace(new RegExp(`^(a=rtpmap:${pt} .*)(\\r?)$`, 'm'), `$1$2\na=fmtp:${pt} stereo=1;sprop-stereo=1$2`);
  }
  return sdp;
}

// Opus look-ahead in restricted low-delay mode (the server's encoder), ms.
const ENCODER_MS = 2.5;
let outputMs = null;
// Output delay (ms) without `media-playout` stats: a context's outputLatency (not its
// baseLatency: the mix plays through <audio>, not through the context).
async function measureOutputLatency() {
  if (outputMs != null || typeof AudioContext === 'undefined') return;
  try {
    const ctx = new AudioContext({ latencyHint: 'interactive' });
    await ctx.resume();
    await new Promise((r) => setTimeout(r, 300));
    outputMs = ctx.outputLatency * 1000 || null;
    await ctx.close();
  } catch {}
}

/** Mean of counter `sum` per unit of `n`, ms: over the last interval, or since the start. */
const per = (s, p, sum, n) => (s?.[n] > 0 ? ((s[sum] - (s[n] > p?.[n] ? p[sum] : 0)) / (s[n] - (s[n] > p?.[n] ? p[n] : 0))) * 1000 : null);

/** Latency the musician hears, ms, in parts: protocol/websocket.md, "Link reports". */
export function estimateLatency(stats, frameMs, wsRttMs) {
  const network = stats.rttMs != null ? stats.rttMs / 2 : wsRttMs != null ? wsRttMs / 2 : 0;
  const parts = { frame: frameMs, encoder: ENCODER_MS, network, jitter: stats.jitterMs ?? 0, output: stats.outMs ?? outputMs ?? 0 };
  return { total: Object.values(parts).reduce((a, b) => a + b), parts };
}

/**
 * Keeps one WHEP session alive while `want` is true: starts, watches the connection
 * state, restarts with a fresh session (exponential backoff) when it fails.
 * Events: 'state' {state, detail}, 'stats' {...}. `detail`: a code the pages translate
 * (i18n.js `d_…`: nomix, failed, closed, lost, denied, nosuch), 'blocked' (playback refused:
 * a hint), `HTTP n`, or an exception's own text.
 */
export class Listener extends EventTarget {
  constructor(audio, auth) {
    super();
    this.audio = audio;
    this.auth = auth; // () => {clientId, bearer}
    this.pc = null;
    this.location = null;
    this.want = false;
    this.attempt = 0;
    this.timer = 0;
    this.statsTimer = 0;
    this.prev = this.prevPlay = null;
    this.state = 'idle';
    this.gen = 0;
    this.startedAt = 0;
    this.firstAudioMs = null;
  }

  set(state, detail = '') {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, detail } }));
  }

  async start() {
    this.want = true;
    this.attempt = 0;
    this.firstAudioMs = null;
    this.startedAt = performance.now();
    // Inside the tap: unlocks playback on browsers that require a gesture.
    this.audio.play().catch(() => {});
    measureOutputLatency();
    await this.connect();
  }

  stop() {
    this.want = false;
    clearTimeout(this.timer);
    this.teardown();
    this.audio.pause();
    this.audio.srcObject = null;
    this.set('idle');
  }

  /** Restart now (the WebSocket came back: the server may have restarted). */
  async restartSoon() {
    if (!this.want) return;
    const pc = this.pc;
    if (pc && pc.connectionState === 'connected') {
      // Still "connected" may be a session the server no longer has (it restarted):
      // keep it only if packets are still arriving.
      const a = await this.packets(pc);
      await new Promise((r) => setTimeout(r, 400));
      const b = await this.packets(pc);
      if (pc !== this.pc || b > a) return;
    }
    clearTimeout(this.timer);
    this.attempt = 0;
    this.connect();
  }

  async packets(pc) {
    let n = 0;
    try {
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') n = s.packetsReceived || 0;
      });
    } catch {}
    return n;
  }

  teardown() {
    clearInterval(this.statsTimer);
    this.prev = this.prevPlay = null;
    if (this.location) {
      fetch(this.location, { method: 'DELETE', keepalive: true }).catch(() => {});
      this.location = null;
    }
    if (this.pc) {
      this.pc.ontrack = this.pc.onconnectionstatechange = null;
      this.pc.close();
      this.pc = null;
    }
  }

  retry(why) {
    this.teardown();
    if (!this.want) return;
    const delay = Math.min(8000, 500 * 2 ** this.attempt++);
    this.set('retrying', why);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  async connect() {
    this.teardown();
    const gen = ++this.gen;
    const { clientId, bearer } = this.auth();
    if (!clientId) return this.retry('nomix');
    this.set('connecting');
    const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle' });
    this.pc = pc;
    const tr = pc.addTransceiver('audio', { direction: 'recvonly' });
    try {
      if ('jitterBufferTarget' in tr.receiver) tr.receiver.jitterBufferTarget = 0;
    } catch {}
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      this.audio.srcObject = stream;
      this.dispatchEvent(new CustomEvent('stream', { detail: stream }));
      this.audio.play().then(
        () => this.dispatchEvent(new CustomEvent('playing')),
        () => this.set(this.state, 'blocked'),
      );
    };
    pc.onconnectionstatechange = () => {
      if (gen !== this.gen) return;
      const s = pc.connectionState;
      if (s === 'connected') {
        this.attempt = 0;
        this.set('connected');
        this.watchStats(pc);
      } else if (s === 'failed' || s === 'closed') {
        this.retry(s);
      } else if (s === 'disconnected') {
        this.set('reconnecting');
        clearTimeout(this.timer);
        this.timer = setTimeout(() => {
          if (gen === this.gen && pc.connectionState !== 'connected') this.retry('lost');
        }, 2500);
      }
    };
    try {
      const offer = await pc.createOffer();
      await pc.setLocalDescription({ type: 'offer', sdp: mungeStereo(offer.sdp) });
      // No wait for ICE gathering: the server is ICE-lite, answers with its candidates and
      // learns ours from our connectivity checks, so the offer needs none (saves up to the
      // whole gathering time on tap-to-audio).
      if (gen !== this.gen) return;
      const res = await fetch(`/whep/${encodeURIComponent(clientId)}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${bearer}` },
        body: pc.localDescription.sdp,
        cache: 'no-store',
      });
      if (gen !== this.gen) return;
      if (res.status !== 201) {
        const msg = res.status === 401 ? 'denied' : res.status === 404 ? 'nosuch' : `HTTP ${res.status}`;
        if (res.status === 401 || res.status === 404) {
          this.want = false;
          this.teardown();
          this.set('error', msg);
          return;
        }
        return this.retry(msg);
      }
      const loc = res.headers.get('Location');
      this.location = loc ? new URL(loc, location.href).href : null;
      const answer = await res.text();
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    } catch (e) {
      if (gen === this.gen) this.retry(String(e && e.message ? e.message : e));
    }
  }

  watchStats(pc) {
    clearInterval(this.statsTimer);
    const tick = async () => {
      if (pc !== this.pc) return;
      let inbound = null;
      let play = null;
      let rtt = null;
      try {
        const report = await pc.getStats();
        report.forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'audio') inbound = s;
          // Chromium: the delay from the jitter buffer to the device, of the path it plays on.
          if (s.type === 'media-playout') play = s;
          if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime != null) rtt = s.currentRoundTripTime;
        });
      } catch {
        return;
      }
      if (!inbound || pc !== this.pc) return; // stale tick
      const p = this.prev;
      const jb = per(inbound, p, 'jitterBufferDelay', 'jitterBufferEmittedCount');
      const outMs = per(play, this.prevPlay, 'totalPlayoutDelay', 'totalSamplesCount');
      this.prevPlay = play;
      let loss = 0;
      const recv = inbound.packetsReceived || 0;
      const lost = Math.max(0, inbound.packetsLost || 0);
      if (p) {
        const dr = recv - p.packetsReceived;
        const dl = lost - Math.max(0, p.packetsLost || 0);
        loss = dr + dl > 0 ? (Math.max(0, dl) / (dr + dl)) * 100 : 0;
      } else if (recv + lost > 0) loss = (lost / (recv + lost)) * 100;
      if (this.firstAudioMs == null && (inbound.totalSamplesReceived || 0) > 0) {
        this.firstAudioMs = performance.now() - this.startedAt;
      }
      this.prev = inbound;
      // No packet for 4 s: the server freed us (browsers notice up to 30 s later).
      this.stall = p && recv === p.packetsReceived ? this.stall + 1 : 0;
      if (this.stall > 3) return this.retry('lost');
      this.dispatchEvent(
        new CustomEvent('stats', {
          detail: { jitterMs: jb, outMs, rttMs: rtt != null ? rtt * 1000 : null, lossPct: loss, packets: recv, audioLevel: inbound.audioLevel ?? 0 },
        }),
      );
    };
    tick();
    this.statsTimer = setInterval(tick, 1000);
  }
}
