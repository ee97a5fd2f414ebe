// Entry point of the bundled page.
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { startApp } from './app.js';
import { createRateChart } from './chart.js';
import { createOriginMap } from './map.js';

// The theme: the operator's last choice, else the system's.
let theme = null;
try {
  theme = localStorage.getItem('bulwark-theme');
} catch {
  /* storage disabled */
}
if (theme !== 'light' && theme !== 'dark') {
  theme = matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
}
document.documentElement.dataset.theme = theme;

startApp(document, { createChart: createRateChart, createMap: createOriginMap });
