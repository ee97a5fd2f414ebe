// Browser test of the dashboard's optional login (HTTP basic auth) in real
// headless Chromium. deploy/e2e/browser_test.go runs:
//
//   node web/e2e/login.spec.mjs <dashboard-url> <user> <password>
//
// Without credentials the page is refused; with them the page loads and its
// websocket (which the browser authenticates like the page) connects.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [dashURL, user, password] = process.argv.slice(2);
if (!dashURL || !user || !password) {
  console.error('usage: login.spec.mjs <dashboard-url> <user> <password>');
  process.exit(2);
}
const WAIT = 20_000;
const checks = [];
function check(name, ok, detail = '') {
  checks.push(ok);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
}

// A fresh browser (its own --user-data-dir) with the given login, if any.
async function withBrowser(httpCredentials, fn) {
  const profile = mkdtempSync(join(tmpdir(), 'bulwark-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.BULWARK_TEST_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    httpCredentials,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    await fn(ctx.pages()[0] ?? (await ctx.newPage()));
  } finally {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

// open loads the page: "refused" when the server answers 401 (headless
// Chromium, having no one to ask for a login, fails the navigation with
// ERR_INVALID_AUTH_CREDENTIALS), else the HTTP status.
async function open(page) {
  const seen = [];
  page.on('response', (r) => seen.push(r.status()));
  return page.goto(dashURL).then(
    (res) => (res.status() === 401 ? 'refused' : String(res.status())),
    (err) => (/ERR_INVALID_AUTH_CREDENTIALS/.test(String(err)) && seen.includes(401) ? 'refused' : String(err)),
  );
}

let failed = false;
try {
  await withBrowser(undefined, async (page) => {
    const outcome = await open(page);
    check('without a login the page is refused', outcome === 'refused', outcome);
  });
  await withBrowser({ username: user, password: `${password}x` }, async (page) => {
    const outcome = await open(page);
    check('a wrong password is refused', outcome === 'refused', outcome);
  });
  await withBrowser({ username: user, password }, async (page) => {
    const outcome = await open(page);
    check('with the login the page loads', outcome === '200', outcome);
    await page.waitForSelector('#conn-state[data-state="connected"]', { timeout: WAIT });
    check('the websocket connects behind the login', true);
    await page.waitForFunction(() => Number(document.querySelector('#rate-chart').dataset.points) > 0, null, { timeout: WAIT });
    check('frames arrive', true);
    check('the dashboard is read-only', (await page.textContent('#mode')).trim() === 'read-only');
  });
} catch (err) {
  console.error(err);
  failed = true;
}
if (failed || checks.includes(false)) process.exit(1);
console.log(`all ${checks.length} checks passed`);
