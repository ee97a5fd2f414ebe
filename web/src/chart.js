// The "Requests per second" chart: uPlot, allowed / throttled / blocked stacked
// over the last 5 minutes. Colours come from the theme's CSS variables.

import uPlot from 'uplot';
import { WINDOW_SECONDS, stackedChartData } from './frames.js';

const HEIGHT = 220;

function cssVar(el, name, fallback) {
  const v = getComputedStyle(el).getPropertyValue(name).trim();
  return v || fallback;
}

function axis(colors) {
  return {
    stroke: colors.axis,
    grid: { stroke: colors.grid, width: 1 },
    ticks: { stroke: colors.grid, width: 1 },
    font: '11px system-ui, sans-serif',
  };
}

/**
 * Create the chart inside `container`. Returns { update(series, nowTs), destroy() }.
 * The x axis always spans the last 5 minutes ending at nowTs (or the newest point).
 * Call it again (after destroy) when the theme changes.
 */
export function createRateChart(container) {
  let xMax = Math.floor(Date.now() / 1000);
  let raw = { allowed: [], throttled: [], blocked: [] };
  const width = () => Math.max(240, Math.floor(container.clientWidth || 600));
  const colors = {
    allowed: cssVar(container, '--green', '#3fb950'),
    throttled: cssVar(container, '--amber', '#d29922'),
    blocked: cssVar(container, '--red', '#f85149'),
    axis: cssVar(container, '--muted', '#8b949e'),
    grid: cssVar(container, '--grid', 'rgba(139, 148, 158, 0.15)'),
  };
  // Stacked: each series is drawn as the running total, its legend shows its own value.
  const legend = (key) => (_u, _v, _si, idx) => (idx === null || idx === undefined ? '—' : (raw[key][idx] ?? '—'));
  const fill = (c) => `color-mix(in srgb, ${c} 45%, transparent)`;

  const opts = {
    width: width(),
    height: HEIGHT,
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    scales: {
      x: { time: true, range: () => [xMax - WINDOW_SECONDS, xMax] },
      y: { range: (_u, _min, max) => [0, Math.max(1, Math.ceil((max || 0) * 1.1))] },
    },
    axes: [axis(colors), { ...axis(colors), size: 48 }],
    series: [
      {},
      { label: 'blocked', stroke: colors.blocked, fill: fill(colors.blocked), width: 1.5, value: legend('blocked') },
      { label: 'throttled', stroke: colors.throttled, fill: fill(colors.throttled), width: 1.5, value: legend('throttled') },
      { label: 'allowed', stroke: colors.allowed, fill: fill(colors.allowed), width: 1.5, value: legend('allowed') },
    ],
  };

  const plot = new uPlot(opts, stackedChartData([]).data, container);

  let ro = null;
  if (typeof ResizeObserver === 'function') {
    ro = new ResizeObserver(() => {
      const w = width();
      if (w !== plot.width) plot.setSize({ width: w, height: HEIGHT });
    });
    ro.observe(container);
  }

  return {
    update(series, nowTs) {
      const shaped = stackedChartData(series);
      raw = shaped.raw;
      const xs = shaped.data[0];
      const newest = xs.length ? xs[xs.length - 1] : undefined;
      const now = Number.isFinite(nowTs) ? nowTs : newest;
      if (Number.isFinite(now)) xMax = Math.max(now, newest ?? now);
      plot.setData(shaped.data);
    },
    destroy() {
      if (ro) ro.disconnect();
      plot.destroy();
    },
  };
}
