// The sample's odds as a plain SVG chart: for a sale of `n` chunks of which `s` are sampled, the
// chance that a seller who corrupted `b` chunks passes the sample, P = C(n-b, s) / C(n, s).
const NS = 'http://www.w3.org/2000/svg';

function passOdds(n, s, b) {
  if (b + s > n) return 0;
  let p = 1;
  for (let i = 0; i < s; i++) p *= (n - b - i) / (n - i);
  return p;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A small chart of pass odds against the number of bad chunks; empty when nothing is sampled. */
export function oddsChart(n, s) {
  const fig = document.createElement('figure');
  if (!(n > 0 && s > 0)) return fig;
  const W = 320, H = 140, L = 36, B = 24;
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', 'aria-label': `Chance a seller corrupting b of ${n} chunks passes a sample of ${s}`, class: 'odds' });
  const x = (b) => L + ((W - L - 8) * b) / n;
  const y = (p) => 8 + (H - B - 8) * (1 - p);
  chart.append(svg('line', { x1: L, y1: y(0), x2: W - 8, y2: y(0), stroke: 'currentColor', 'stroke-opacity': 0.4 }));
  chart.append(svg('line', { x1: L, y1: y(0), x2: L, y2: y(1), stroke: 'currentColor', 'stroke-opacity': 0.4 }));
  chart.append(svg('text', { x: 2, y: y(1) + 4, 'font-size': 10, fill: 'currentColor' }, '100%'));
  chart.append(svg('text', { x: 8, y: y(0), 'font-size': 10, fill: 'currentColor' }, '0%'));
  chart.append(svg('text', { x: L, y: H - 6, 'font-size': 10, fill: 'currentColor' }, `bad chunks 0…${n}`));
  let d = '';
  for (let b = 0; b <= n; b++) d += `${b === 0 ? 'M' : 'L'}${x(b).toFixed(1)},${y(passOdds(n, s, b)).toFixed(1)}`;
  chart.append(svg('path', { d, fill: 'none', stroke: '#2a6df4', 'stroke-width': 2 }));
  fig.append(chart);
  const cap = document.createElement('figcaption');
  cap.textContent = `Odds a cheating seller passes the sample of ${s} of ${n} chunks`;
  fig.append(cap);
  return fig;
}
