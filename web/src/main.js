// Entry point of the bundled page.
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { startApp } from './app.js';
import { createRateChart } from './chart.js';

startApp(document, { createChart: createRateChart });
