// End-to-end test of the dashboard in real headless Chromium (Debian's
// chromium driven by playwright-core). deploy/e2e/browser_test.go starts the
// stack and runs:
//
//   node web/e2e/dashboard.spec.mjs <dashboard-url> <gateway-url> <artefact-dir> <admin-token>
//
// It opens the dashboard, sends a burst from one client (X-Forwarded-For
// 81.2.69.142, which the demo GeoIP database places in London, GB) through
// the gateway, and checks what an operator would see: the live chart's blocked
// series rises, the ban appears in the feed with its reasons, the map has a
// marker for GB, the detail view explains the block, and the ban can be
// lifted with the admin token. Screenshots go to the artefact directory.
// Exit code 0 means every check passed.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [dashURL, gwURL, outDir, adminToken] = process.argv.slice(2);
if (!dashURL || !gwURL || !outDir || !adminToken) {
  console.error('usage: dashboard.spec.mjs <dashboard-url> <gateway-url> <artefact-dir> <admin-token>');
  process.exit(2);
}
const ATTACKER = '81.2.69.142';
const WAIT = 20_000; // generous: a check fails only if nothing happens at all

mkdirSync(outDir, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'bulwark-chromium-'));
const checks = [];
function check(name, ok, detail = '') {
  checks.push({ name, ok });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
}

async function burst(n) {
  const codes = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(new URL('/api/products', gwURL), { headers: { 'X-Forwarded-For': ATTACKER } });
    await res.arrayBuffer();
    codes.push(res.status);
    await new Promise((r) => setTimeout(r, 10));
  }
  return codes;
}

const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.BULWARK_TEST_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
  viewport: { width: 1280, height: 720 },
  colorScheme: 'dark', // the page follows the system theme until the operator picks one
});
let failed = false;
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // Nothing may come from outside the dashboard: no CDN.
  const foreign = [];
  const home = new URL(dashURL).origin;
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'data:' && u.origin !== home) foreign.push(r.url());
  });
  page.on('dialog', (d) => d.accept(adminToken)); // the unban prompt

  await page.goto(dashURL, { waitUntil: 'load' });
  await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: WAIT });
  check('websocket connected', true);
  await page.waitForFunction(() => Number(document.querySelector('#rate-chart').dataset.points) >= 290, null, { timeout: WAIT });
  check('the chart starts with 5 minutes of history', true);
  await page.waitForSelector('#mode[data-admin="true"]', { timeout: WAIT });
  check('admin mode is shown (the token is not)', !(await page.content()).includes(adminToken));
  const before = Number(await page.getAttribute('#rate-chart', 'data-blocked-sum'));

  const codes = await burst(100);
  const tally = codes.reduce((m, c) => ({ ...m, [c]: (m[c] ?? 0) + 1 }), {});
  check('the gateway blocks the burst', codes[0] === 200 && codes.at(-1) === 403, JSON.stringify(tally));

  await page.waitForFunction((b) => Number(document.querySelector('#rate-chart').dataset.blockedSum) > b, before, { timeout: WAIT });
  const after = Number(await page.getAttribute('#rate-chart', 'data-blocked-sum'));
  check('the blocked series rises', after > before, `${before} → ${after}`);

  const row = `#event-feed tr[data-ip="${ATTACKER}"][data-type="ban"]`;
  await page.waitForSelector(row, { timeout: WAIT });
  const reasons = (await page.textContent(`${row} td.reasons`)).trim();
  check('the ban is in the live feed with its reasons', /\(\d\.\d\d\)/.test(reasons), reasons);
  check('the feed row names the country', (await page.textContent(`${row} td.country`)).trim() === 'GB');

  await page.waitForSelector('#origin-map circle.marker[data-country="GB"]', { timeout: WAIT });
  check('the map has a marker for GB', true);
  await page.waitForFunction(() => Number(document.querySelector('#score-histogram').dataset.total) > 0, null, { timeout: WAIT });
  check('the score histogram has counts', true);
  await page.waitForSelector(`#top-offenders tr[data-ip="${ATTACKER}"]`, { timeout: WAIT });
  check('the attacker is a top offender', true);
  await page.waitForSelector(`#bans tr[data-ip="${ATTACKER}"] button[data-unban]`, { timeout: WAIT });
  const ttl = (await page.textContent(`#bans tr[data-ip="${ATTACKER}"] .ttl`)).trim();
  check('the ban is listed with time left', /^\d+m \d\ds$/.test(ttl), ttl);
  // The history panel re-reads MongoDB every 10 s.
  await page.waitForSelector(`#hist-top-ips tr[data-ip="${ATTACKER}"]`, { timeout: 3 * WAIT });
  check('the 24-hour history lists the attacker', true);
  check('the 24-hour history counts GB', (await page.$('#hist-countries tr[data-country="GB"]')) !== null);
  // Ask the history: bans from GB with a score of at least 0.8.
  await page.selectOption('#search-form select[name="type"]', 'ban');
  await page.fill('#search-form input[name="country"]', 'GB');
  await page.fill('#search-form input[name="min_score"]', '0.8');
  await page.click('#search-form button[type="submit"]');
  await page.waitForSelector('#search-form[data-state="ready"]', { timeout: WAIT });
  const found = await page.$$eval('#search-results tr', (rows) => rows.map((r) => `${r.dataset.type} ${r.dataset.ip}`));
  check('the history search finds the ban', found.length === 1 && found[0] === `ban ${ATTACKER}`, found.join(', '));
  await page.waitForTimeout(1500); // let the chart animate to the newest frame for the picture
  await page.screenshot({ path: join(outDir, 'dashboard.png'), fullPage: true });

  // Why was this blocked?
  await page.click(`${row} [data-detail]`);
  await page.waitForSelector(`#detail[data-state="ready"][data-ip="${ATTACKER}"]`, { timeout: WAIT });
  const features = await page.$$eval('#detail-reasons tr[data-feature]', (rows) => rows.map((r) => r.dataset.feature));
  check('the detail view lists the score features', features.length > 0, features.join(', '));
  check('the detail view shows the geo', (await page.getAttribute('#detail-summary', 'data-country')) === 'GB');
  check('the detail view shows the ban', (await page.getAttribute('#detail-summary', 'data-banned')) === 'true');
  check(
    'the detail view lists the events from MongoDB',
    (await page.$$(`#detail-events tr[data-type="ban"]`)).length > 0,
  );
  check('the detail view shows the recent requests', Number(await page.getAttribute('#detail-requests', 'data-sum')) > 0);
  await page.screenshot({ path: join(outDir, 'detail.png') });

  // Unban from the detail view, with the token typed into the prompt.
  await page.click('#detail-actions button[data-unban]');
  await page.waitForSelector(`#detail[data-state="ready"] #detail-summary[data-banned="false"]`, { timeout: WAIT });
  check('unban lifts the ban', true);
  await page.click('#detail-close');
  await page.waitForSelector(`#bans tr[data-ip="${ATTACKER}"]`, { state: 'detached', timeout: WAIT });
  // It never comes back: watch every change of the panel for five frames,
  // past the dashboard's next listing of the bans (every 3 s).
  await page.evaluate((ip) => {
    window.banSeenAgain = false;
    const body = document.querySelector('#bans');
    new MutationObserver(() => {
      if (body.querySelector(`tr[data-ip="${ip}"]`)) window.banSeenAgain = true;
    }).observe(body, { childList: true });
  }, ATTACKER);
  const lastTs = Number(await page.getAttribute('#rate-chart', 'data-last-ts'));
  await page.waitForFunction((t) => Number(document.querySelector('#rate-chart').dataset.lastTs) >= t + 5, lastTs, { timeout: WAIT });
  check('the lifted ban leaves the bans panel for good', (await page.evaluate(() => window.banSeenAgain)) === false);
  await page.waitForSelector(`#event-feed tr[data-ip="${ATTACKER}"][data-type="unban"]`, { timeout: WAIT });
  check('the unban event reaches the live feed', true);

  // Light theme and a phone.
  check('the system theme (dark) applies first', (await page.getAttribute('html', 'data-theme')) === 'dark');
  await page.click('#theme-toggle');
  check('the toggle switches to the light theme', (await page.getAttribute('html', 'data-theme')) === 'light');
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check('the light theme has a light background', bg === 'rgb(246, 248, 250)', bg);
  await page.screenshot({ path: join(outDir, 'dashboard-light.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check('no horizontal scrolling at phone width', overflow <= 0, `${overflow}px`);
  await page.screenshot({ path: join(outDir, 'dashboard-phone.png'), fullPage: true });

  check('no script errors', errors.length === 0, errors.join('; '));
  check('no requests outside the dashboard', foreign.length === 0, foreign.join(' '));
} catch (err) {
  console.error(err);
  failed = true;
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
if (failed || checks.some((c) => !c.ok)) process.exit(1);
console.log(`all ${checks.length} checks passed`);
