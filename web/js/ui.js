// DOM helpers both pages share: element lookup and creation, the toast, and the test
// hooks (window.monmix), which exist only when a test harness asked for them.

export const $ = (id) => document.getElementById(id);

/** Creates an element: attributes (`class`, `on…` listeners, booleans) and children. */
export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids) if (c != null) el.append(c);
  return el;
}

let toastTimer = 0;
/** A short message at the bottom of the screen; `bad` for errors. */
export function toast(text, bad = false) {
  let t = document.querySelector('.toast');
  if (!t) {
    t = h('div', { class: 'toast', role: 'status', 'aria-live': 'polite' });
    document.body.append(t);
  }
  t.textContent = text;
  t.classList.toggle('bad', bad);
  t.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove('show'), 2500);
}

/**
 * Exposes an object to the browser tests as `window.monmix[name]`. Only when the test
 * harness set `window.__MONMIX_TEST__` before the page loaded (an init script): a
 * musician's page carries no test handles.
 */
export function testHook(name, value) {
  if (!globalThis.__MONMIX_TEST__) return;
  globalThis.monmix ??= {};
  globalThis.monmix[name] = value;
}
