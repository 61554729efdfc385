// Smaller frames (--frame-ms 5 and 2.5) stream to Chromium: the page connects, receives
// packets at the frame rate, decodes the subscribed tone on its side, and reports its
// jitter buffer and latency readout (printed as `# bench frames_…` lines for BENCHMARKS.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, startServer, tempDir, cleanup, PHONE, join, wsClient, until, inbound } from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

for (const frameMs of [10, 5, 2.5]) {
  test(`listen with ${frameMs} ms frames`, { timeout: 90000 }, async () => {
    const dir = tempDir();
    const srv = await startServer(dir, 0, ['--frame-ms', String(frameMs)]);
    try {
      const ctx = await browser.newContext(PHONE);
      const page = await ctx.newPage();
      const id = await join(page, srv.url, `F${frameMs}`);
      const ws = await wsClient(srv.addr, { client_id: id.client_id, token: id.token });
      ws.send({ type: 'subscribe', channels: [0], pans: { 0: -1 } });
      await page.locator('#listen').click();
      await until(() => page.evaluate(() => window.monmix.listener.pc?.connectionState === 'connected'), 10000, 'connected');
      await page.waitForTimeout(2000);
      const a = await inbound(page);
      await page.waitForTimeout(8000);
      const b = await inbound(page);
      const rate = (b.packetsReceived - a.packetsReceived) / 8;
      const want = 1000 / frameMs;
      assert.ok(Math.abs(rate - want) < want * 0.05, `${rate} packets/s, want ${want}`);
      assert.ok(b.audioLevel > 0.01, `audio level ${b.audioLevel}`);
      const jbLast = ((b.jb - a.jb) / (b.n - a.n)) * 1000;
      const lat = await page.locator('#lat').textContent();
      const load = (await import('node:os')).loadavg()[0].toFixed(1);
      console.log(`# bench frames_${frameMs}ms packets_per_s ${rate.toFixed(1)} jitter_buffer_ms ${jbLast.toFixed(1)} latency_readout_ms ${lat} lost ${b.lost} loadavg ${load}`);
      ws.close?.();
      await ctx.close();
    } finally {
      await srv.kill();
      cleanup(dir);
    }
  });
}
