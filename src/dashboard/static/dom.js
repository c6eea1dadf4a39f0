// Tiny DOM helpers: text only (never innerHTML with data), so nothing from the chain can script.

/** Creates an element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else e.setAttribute(k, String(v));
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

/** Replaces the children of `target`. */
export function fill(target, ...children) {
  target.replaceChildren(...children.map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
}

/** A <dl> body from [term, value] pairs. */
export function pairs(target, rows) {
  fill(target, ...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v ?? '—')]));
}

/** An <img> of a QR code for `text`, rendered by the daemon as SVG. */
export function qr(text, label) {
  return el('img', { class: 'qr', src: `/dashboard/qr.svg?text=${encodeURIComponent(text)}`, alt: label, 'data-qr': text });
}

/** A pledge progress bar: `value` of `max`, labelled for screen readers. */
export function bar(value, max, label) {
  const pct = max > 0 ? Math.min(100, (Number(value) * 100) / Number(max)) : 0;
  const inner = el('span');
  inner.style.width = `${pct}%`;
  return el('div', { class: 'bar', role: 'progressbar', 'aria-label': label, 'aria-valuemin': 0, 'aria-valuemax': String(max), 'aria-valuenow': String(value) }, inner);
}

/** Shows an error (or clears it). */
export function showError(err) {
  fill(document.getElementById('error'), err ? String(err.message ?? err) : '');
}

/** Runs `fn`, showing its error instead of throwing. */
export async function guarded(fn) {
  try {
    showError(null);
    return await fn();
  } catch (err) {
    // "Off without an unlocked wallet" is said once, by the notice at the top, not by every page.
    if (err?.code !== 'NOT_INITIALIZED' || document.getElementById('notice')?.hidden !== false) showError(err);
    return undefined;
  }
}

/** Bytes as the user reads them (1000-based, like the daemon's quota flags). */
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = Number(n);
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

/** A random hex id (an operation id that the daemon's progress events carry back). */
export function newOpId() {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A drop zone and its file input: the first file dropped or chosen goes to `onFile` (errors shown,
 * not thrown). The input is cleared after each choice, so choosing the same file again fires again.
 */
export function wireFileDrop(zone, input, onFile) {
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const file = e.dataTransfer?.files?.[0];
    if (file) guarded(() => onFile(file));
  });
  input.addEventListener('change', (e) => {
    const file = e.target.files?.[0];
    if (file) guarded(() => onFile(file));
    e.target.value = '';
  });
}
