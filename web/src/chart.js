// The "Requests per second" chart: uPlot, three series over the last 5 minutes.

import uPlot from 'uplot';
import { WINDOW_SECONDS, toChartData } from './frames.js';

const COLORS = {
  allowed: '#3fb950',
  blocked: '#f85149',
  throttled: '#d29922',
  axis: '#8b949e',
  grid: 'rgba(139, 148, 158, 0.15)',
};

const HEIGHT = 220;

function axis() {
  return {
    stroke: COLORS.axis,
    grid: { stroke: COLORS.grid, width: 1 },
    ticks: { stroke: COLORS.grid, width: 1 },
    font: '11px system-ui, sans-serif',
  };
}

/**
 * Create the chart inside `container`. Returns { update(series, nowTs), destroy() }.
 * The x axis always spans the last 5 minutes ending at nowTs (or the newest point).
 */
export function createRateChart(container) {
  let xMax = Math.floor(Date.now() / 1000);
  const width = () => Math.max(240, Math.floor(container.clientWidth || 600));

  const opts = {
    width: width(),
    height: HEIGHT,
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    scales: {
      x: { time: true, range: () => [xMax - WINDOW_SECONDS, xMax] },
      y: { range: (_u, _min, max) => [0, Math.max(1, Math.ceil((max || 0) * 1.1))] },
    },
    axes: [axis(), { ...axis(), size: 48 }],
    series: [
      {},
      { label: 'allowed', stroke: COLORS.allowed, fill: 'rgba(63, 185, 80, 0.08)', width: 1.5 },
      { label: 'blocked', stroke: COLORS.blocked, fill: 'rgba(248, 81, 73, 0.10)', width: 1.5 },
      { label: 'throttled', stroke: COLORS.throttled, width: 1.5 },
    ],
  };

  const plot = new uPlot(opts, toChartData([]), container);

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
      const data = toChartData(series);
      const newest = data[0].length ? data[0][data[0].length - 1] : undefined;
      const now = Number.isFinite(nowTs) ? nowTs : newest;
      if (Number.isFinite(now)) xMax = Math.max(now, newest ?? now);
      plot.setData(data);
    },
    destroy() {
      if (ro) ro.disconnect();
      plot.destroy();
    },
  };
}
