// Line charts drawn with uPlot (MIT, served by the daemon from node_modules: /dashboard/vendor/).
// uPlot draws on a canvas and styles its elements through the CSSOM, which the page's strict CSP
// allows. Each chart is kept by name in `window.dashboardState.charts` with the data it shows,
// so the browser tests (and a curious user in the console) read exactly what is drawn.
import uPlot from '/dashboard/vendor/uplot.esm.js';
import { el } from './dom.js';

const state = (window.dashboardState ??= { charts: {}, progress: {} });
/** Live uPlot instances by chart name. */
const plots = new Map();

const ACCENT = '#2a6df4';
const SECOND = '#c47a00';
/** Tick steps of count axes. */
const INTEGER_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000];

/** The page's text colour, so axes stay readable in light and dark mode. */
function ink() {
  return window.getComputedStyle(document.body).color || '#333';
}

function axes(xLabel, yLabel, xTime) {
  const stroke = ink();
  const grid = { stroke: '#8884', width: 1 };
  return [
    {
      label: xLabel, stroke, grid, ticks: grid,
      // Whole numbers only on a count axis (block heights, targets): no tick at height 112.5.
      ...(xTime ? {} : { incrs: INTEGER_STEPS, values: (_u, splits) => splits.map((v) => (v === null || v === undefined ? '' : String(v))) }),
    },
    { label: yLabel, stroke, grid, ticks: grid, size: 56 },
  ];
}

function widthOf(box) {
  return Math.max(240, Math.min(720, Math.floor(box.getBoundingClientRect().width || box.parentElement?.getBoundingClientRect().width || 320)));
}

/**
 * Draws (or redraws) the chart `name` in `box`: `data` is [xs, ...ys] as uPlot takes it, `series`
 * one {label, stroke?, step?, dash?, unit?} per y array. `xTime`: xs are Unix seconds; `xLog`: a
 * logarithmic x axis (confirmation targets 1…144).
 */
export function lineChart(box, name, { xLabel, yLabel, series, xTime = false, xLog = false, yMin }, data) {
  state.charts[name] = { series: series.map((s) => s.label), data: data.map((a) => [...a]) };
  box.dataset.points = String(data[0]?.length ?? 0);
  const old = plots.get(name);
  if (old && old.root.isConnected && old.root.parentElement === box) {
    old.setData(data);
    return old;
  }
  old?.destroy();
  box.replaceChildren();
  const opts = {
    width: widthOf(box),
    height: 180,
    scales: { x: xLog ? { time: false, distr: 3, log: 10, range: (_u, min, max) => [min, max] } : { time: xTime }, y: { range: (_u, min, max) => [Math.min(yMin ?? min, min), max > min ? max * 1.1 : min + 1] } },
    axes: axes(xLabel, yLabel, xTime),
    legend: { live: true },
    series: [
      { label: xLabel, value: (_u, v) => (v === null || v === undefined ? '—' : xTime ? new Date(v * 1000).toLocaleTimeString() : String(v)) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.stroke ?? (i === 0 ? ACCENT : SECOND),
        width: 2,
        ...(s.dash ? { dash: s.dash } : {}),
        ...(s.step ? { paths: uPlot.paths.stepped({ align: 1 }) } : {}),
        points: { show: data[0].length < 40 },
        value: (_u, v) => (v === null || v === undefined ? '—' : `${Number(v).toLocaleString('en-US', { maximumFractionDigits: 2 })}${s.unit ? ` ${s.unit}` : ''}`),
      })),
    ],
  };
  const u = new uPlot(opts, data, box);
  plots.set(name, u);
  return u;
}

/** Forgets charts whose names start with `prefix` (their cards are about to be rebuilt). */
export function dropCharts(prefix) {
  for (const [name, u] of plots) {
    if (!name.startsWith(prefix)) continue;
    u.destroy();
    plots.delete(name);
    delete state.charts[name];
  }
}

/** A labelled figure holding a chart: `caption` says in words what the picture shows. */
export function chartFigure(id, caption) {
  const box = el('div', { class: 'chart', id, role: 'img', 'aria-label': caption });
  return { figure: el('figure', { class: 'chart-figure' }, box, el('figcaption', {}, caption)), box };
}

/** Fits every visible chart to its box (after a page switch or a resize: hidden boxes have no width). */
export function resizeCharts() {
  for (const u of plots.values()) {
    const box = u.root.parentElement;
    if (u.root.isConnected && box && box.getBoundingClientRect().width > 0) u.setSize({ width: widthOf(box), height: 180 });
  }
}

// Charts follow the width of the page (a phone turned sideways, a resized window).
let resizeTimer = null;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(resizeCharts, 150);
});
