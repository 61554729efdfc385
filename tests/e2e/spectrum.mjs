// The in-page FFT the browser tests judge a listener's audio by, for Chromium
// (playwright) and Firefox (puppeteer) alike: pass it to `page.evaluate` with the tones.

/** Peak level (dB) near each tone, left and right, from the page's own WebAudio analysis. */
export const spectrumInPage = async (tones) => {
  const stream = document.getElementById('audio').srcObject;
  const ctx = new AudioContext();
  await ctx.resume();
  const src = ctx.createMediaStreamSource(stream);
  const split = ctx.createChannelSplitter(2);
  src.connect(split);
  const an = [0, 1].map((i) => {
    const a = ctx.createAnalyser();
    a.fftSize = 8192;
    a.smoothingTimeConstant = 0;
    split.connect(a, i);
    return a;
  });
  await new Promise((r) => setTimeout(r, 1200));
  const bin = ctx.sampleRate / 8192;
  const out = an.map((a) => {
    const d = new Float32Array(a.frequencyBinCount);
    a.getFloatFrequencyData(d);
    return tones.map((f) => {
      const c = Math.round(f / bin);
      let m = -200;
      for (let b = c - 2; b <= c + 2; b++) m = Math.max(m, d[b]);
      return Math.round(m);
    });
  });
  await ctx.close();
  return { left: out[0], right: out[1], channels: src.channelCount };
};
