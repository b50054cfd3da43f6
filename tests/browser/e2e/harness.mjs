// The browser tests' harness: a real `rallypoint demo` on a random port with its own SQLite file,
// Debian's Chromium driven by playwright-core, and helpers that act as the people on the pages.
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '../../..');
/** Test artefacts (screenshots, server logs): `target/browser/` unless ARTIFACTS_DIR says. */
export const ARTIFACTS = process.env.ARTIFACTS_DIR || join(REPO, 'target', 'browser');
/** How long a step may take before the test fails: generous, the machines are shared. */
export const WAIT = 15_000;

export const PHONE = { width: 360, height: 740 };
export const DESKTOP = { width: 1366, height: 900 };

/** Where the demo drivers stand: Bob near Alice, Carol further away. */
export const SPOTS = {
  'DRV-001': { latitude: 48.8566, longitude: 2.3522 },
  'DRV-002': { latitude: 48.8610, longitude: 2.3420 },
  'DRV-003': { latitude: 48.8760, longitude: 2.3880 },
};

/** Starts `rallypoint demo` (RALLYPOINT_BIN, else the debug build) and resolves with its base URL
 *  once it prints it. */
export async function startServer(name) {
  const bin = process.env.RALLYPOINT_BIN || join(REPO, 'target', 'debug', 'rallypoint');
  const dir = await mkdtemp(join(tmpdir(), 'rallypoint-browser-'));
  await mkdir(ARTIFACTS, { recursive: true });
  const log = createWriteStream(join(ARTIFACTS, `${name}.server.log`));
  const env = {
    ...process.env,
    RALLYPOINT_DATABASE__URL: join(dir, 'rallypoint.db'),
    // Its generated secret goes there too, not into the working directory.
    RALLYPOINT_SERVER__DATA_DIR: dir,
    RALLYPOINT_SERVER__BIND: '127.0.0.1:0',
    RUST_LOG: process.env.RUST_LOG || 'info',
  };
  delete env.RALLYPOINT_CONFIG;
  const child = spawn(bin, ['demo'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.pipe(log);
  const base = await new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`the server did not start within ${WAIT} ms:\n${out}`)), WAIT);
    child.on('error', (e) => fail(new Error(`cannot start ${bin}: ${e.message} (build it with cargo build, or set RALLYPOINT_BIN)`)));
    child.on('exit', (code) => fail(new Error(`the server exited with ${code} before it was ready:\n${out}`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      log.write(chunk);
      const m = out.match(/Driver console:\s+(http:\/\/[^\s/]+)\/driver/);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
  });
  child.stdout.on('data', (c) => log.write(c));
  return {
    base,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
    /** A REST call as an admin of the demo (the dev login). */
    async api(method, path, body) {
      const login = await fetch(`${base}/api/v1/dev/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ sub: 'test-admin', role: 'admin' }),
      });
      const { token } = await login.json();
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    },
  };
}

/** Debian's Chromium with the flags this machine needs; playwright gives each launch a new empty
 *  profile directory (its own --user-data-dir). */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Collects a page's console errors and uncaught exceptions, to fail on them. */
export function watch(page, label) {
  const problems = [];
  page.on('pageerror', (e) => problems.push(`${label}: uncaught ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket|ERR_INTERNET_DISCONNECTED|Failed to load resource/.test(m.text())) {
      problems.push(`${label}: console error ${m.text()}`);
    }
  });
  page.problems = problems;
  return page;
}

/** A driver's phone: signs in with the dev login and, unless told otherwise, goes online. */
export async function driver(browser, base, id, { online = true } = {}) {
  const context = await browser.newContext({
    viewport: PHONE,
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    geolocation: SPOTS[id],
    permissions: ['geolocation'],
  });
  const page = watch(await context.newPage(), id);
  await page.goto(`${base}/driver`);
  await page.getByLabel('Driver ID').fill(id);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  if (online) {
    await page.getByRole('button', { name: 'Go online' }).click();
    await page.locator('#my-status', { hasText: /online|busy/ }).waitFor({ timeout: WAIT });
  }
  // The client keeps every state it went through, for the tests to check.
  await page.evaluate(() => {
    window.seenStates = [window.rallypoint.state];
    window.rallypoint.on('state', (s) => window.seenStates.push(s));
  });
  return { context, page, id };
}

/** The dispatcher dashboard on a desktop screen, signed in as an admin. */
export async function dashboard(browser, base) {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = watch(await context.newPage(), 'dashboard');
  await page.goto(`${base}/dispatch`);
  await page.getByLabel('User').fill('dispatch-1');
  await page.getByLabel('Role').selectOption('admin');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  await page.locator('#orders tbody tr').first().waitFor({ timeout: WAIT });
  return { context, page };
}

/** Reports an issue from the driver console. */
export async function report(page, kind, comment) {
  await page.getByLabel('What happened').selectOption({ label: kind });
  if (comment) await page.getByLabel('Comment').fill(comment);
  await page.getByRole('button', { name: 'Report issue' }).click();
}

export async function screenshot(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Fails when a page logged an error or threw. */
export function assertClean(...pages) {
  const problems = pages.flatMap((p) => p.problems || []);
  if (problems.length) throw new Error(`pages reported problems:\n${problems.join('\n')}`);
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
