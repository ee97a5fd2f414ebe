// The attack-origins map: Natural Earth countries (world-atlas TopoJSON,
// bundled, so it works offline) drawn once as SVG with d3-geo, and one marker
// per origin country sized by its number of events.

import { geoGraticule10, geoNaturalEarth1, geoPath } from 'd3-geo';
import { feature, mesh } from 'topojson-client';
import world from 'world-atlas/countries-110m.json';
import { formatCount, markerRadius } from './frames.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 960;
const HEIGHT = 470;

function svgEl(doc, tag, attrs = {}) {
  const e = doc.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/**
 * Draw the world into `container` and return { update(origins) }. Markers are
 * `circle.marker[data-country]` with `data-events`; the container's
 * `data-markers` holds how many there are.
 */
export function createOriginMap(container) {
  const doc = container.ownerDocument;
  const projection = geoNaturalEarth1().fitExtent(
    [
      [4, 4],
      [WIDTH - 4, HEIGHT - 4],
    ],
    { type: 'Sphere' },
  );
  const path = geoPath(projection);
  const svg = svgEl(doc, 'svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'img',
    'aria-label': 'Attack origins by country',
    preserveAspectRatio: 'xMidYMid meet',
  });
  svg.append(
    svgEl(doc, 'path', { class: 'sphere', d: path({ type: 'Sphere' }) }),
    svgEl(doc, 'path', { class: 'graticule', d: path(geoGraticule10()) }),
    svgEl(doc, 'path', { class: 'land', d: path(feature(world, world.objects.countries)) }),
    svgEl(doc, 'path', { class: 'borders', d: path(mesh(world, world.objects.countries, (a, b) => a !== b)) }),
  );
  const markers = svgEl(doc, 'g', { class: 'markers' });
  svg.append(markers);
  container.replaceChildren(svg);
  container.dataset.markers = '0';

  return {
    update(origins) {
      const list = Array.isArray(origins) ? origins : [];
      const peak = list.reduce((m, o) => Math.max(m, o.events), 0);
      const circles = [];
      // Largest first, so small markers stay on top and clickable.
      for (const o of list) {
        const xy = projection([o.lon, o.lat]);
        const r = markerRadius(o.events, peak);
        if (!xy || !(r > 0)) continue;
        const c = svgEl(doc, 'circle', {
          class: o.blocks > 0 ? 'marker blocking' : 'marker',
          cx: xy[0].toFixed(1),
          cy: xy[1].toFixed(1),
          r: r.toFixed(1),
          'data-country': o.country,
          'data-events': o.events,
        });
        const title = svgEl(doc, 'title');
        title.textContent = `${o.country}: ${formatCount(o.events)} events, ${formatCount(o.blocks)} blocks`;
        c.append(title);
        circles.push(c);
      }
      markers.replaceChildren(...circles);
      container.dataset.markers = String(circles.length);
    },
  };
}
