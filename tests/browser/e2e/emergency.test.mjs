// Emergency units (SPEC 9) in a real browser: a reporter on a phone creates emergencies on
// /emergency/report, two dashboards on /emergency and the units map on /emergency/units follow
// them without a reload, units on the driver console go online, get dispatched and complete.
// The four scenarios of the emergency-dispatch system: a new emergency appears without refresh;
// dispatch makes it ASSIGNED and the unit DISPATCHED, with a toast and the line on the map;
// completion brings both back; two dashboards and the reporter stay in step. Plus a dispatch by
// keyboard alone, the report form on a 360 px phone, and a dashboard resuming after going offline.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, screenshot, assertClean, watch, WAIT, PHONE, DESKTOP,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer('emergency');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Where the reporter stands, and where the demo's units wait when they go online. */
const REPORTER_AT = { latitude: 48.8590, longitude: 2.3460 };
const UNIT_AT = {
  'UNIT-A1': { latitude: 48.8535, longitude: 2.3525 },
  'UNIT-A2': { latitude: 48.8790, longitude: 2.3560 },
};

async function signInAsStaff(page, path) {
  await page.goto(`${server.base}${path}`);
  await page.getByLabel('User').fill('desk-1');
  await page.getByLabel('Role').selectOption('dispatcher');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
}

/** The emergency dashboard on a desktop screen, signed in as a dispatcher. */
async function desk(label) {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = watch(await context.newPage(), label);
  await signInAsStaff(page, '/emergency');
  // The demo's four units and two emergencies, loaded.
  await page.waitForFunction(() => document.querySelectorAll('#units tbody tr').length === 4
    && document.querySelectorAll('#emergencies tbody tr').length >= 2, null, { timeout: WAIT });
  return { context, page };
}

async function unitsMap() {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = watch(await context.newPage(), 'units-map');
  await signInAsStaff(page, '/emergency/units');
  await page.waitForFunction(() => document.querySelectorAll('#map g.unit').length === 4, null, { timeout: WAIT });
  return { context, page };
}

/** The reporter's phone, signed in with the dev login. */
async function reporter(sub) {
  const context = await browser.newContext({
    viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    geolocation: REPORTER_AT, permissions: ['geolocation'],
  });
  const page = watch(await context.newPage(), sub);
  await page.goto(`${server.base}/emergency/report`);
  await page.getByLabel('Your name or number').fill(sub);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  return { context, page };
}

/** A unit's console (/driver) on a phone at its spot, online. */
async function unit(id) {
  const context = await browser.newContext({
    viewport: PHONE, isMobile: true, hasTouch: true, geolocation: UNIT_AT[id], permissions: ['geolocation'],
  });
  const page = watch(await context.newPage(), id);
  await page.goto(`${server.base}/driver`);
  await page.getByLabel('Driver ID').fill(id);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  await page.getByRole('button', { name: 'Go online' }).click();
  await page.locator('#my-status', { hasText: 'online' }).waitFor({ timeout: WAIT });
  return { context, page, id };
}

/** Reports from the reporter's form; answers the stored emergency. */
async function reportEmergency(page, { type, severity, description, at }) {
  await page.getByLabel('Type').selectOption({ label: type });
  await page.getByLabel('Severity').selectOption({ label: severity });
  await page.getByLabel('Description').fill(description);
  if (at) {
    await page.getByLabel('Latitude').fill(String(at.lat));
    await page.getByLabel('Longitude').fill(String(at.lng));
  } else {
    await page.getByRole('button', { name: 'Use my location' }).click();
    await page.locator('#locate-status', { hasText: 'Found you' }).waitFor({ timeout: WAIT });
  }
  await page.getByRole('button', { name: 'Report emergency' }).click();
  await page.locator('#report-result.confirmed').waitFor({ timeout: WAIT });
  const list = await server.api('GET', '/api/v1/emergencies');
  const e = list.body.find((x) => x.description === description);
  assert.ok(e, `the emergency "${description}" is stored`);
  return e;
}

const row = (page, id) => page.locator(`#emergencies tbody tr[data-emergency="${id}"]`);

async function rowIs(page, id, status, unitId = '') {
  await page.locator(`#emergencies tbody tr[data-emergency="${id}"][data-status="${status}"][data-unit="${unitId}"]`)
    .waitFor({ timeout: WAIT });
}

async function unitIs(page, id, status) {
  await page.locator(`#units tbody tr[data-unit="${id}"][data-status="${status}"]`).waitFor({ timeout: WAIT });
}

async function mineIs(page, id, status, text) {
  await page.locator(`#my-emergencies li[data-emergency="${id}"][data-status="${status}"]`, { hasText: text })
    .waitFor({ timeout: WAIT });
}

/** What a dashboard shows, to compare two tabs. */
function shown(page) {
  return page.evaluate(() => ({
    emergencies: [...document.querySelectorAll('#emergencies tbody tr')]
      .map((tr) => `${tr.dataset.emergency} ${tr.dataset.status} ${tr.dataset.unit}`).sort(),
    units: [...document.querySelectorAll('#units tbody tr')].map((tr) => `${tr.dataset.unit} ${tr.dataset.status}`).sort(),
    counts: [...document.querySelectorAll('.tiles dd')].map((d) => d.textContent),
  }));
}

test('emergencies: created, dispatched and completed, followed live by dashboards, the map and the reporter', async () => {
  const desk1 = await desk('desk-1');
  const desk2 = await desk('desk-2');
  const map = await unitsMap();
  const rep = await reporter('rep-1');

  // The report form fits a 360 px phone: nothing wider than the screen, every field labelled.
  assert.ok(await rep.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    'no sideways scrolling on the phone');
  for (const name of ['Type', 'Severity', 'Description', 'Latitude', 'Longitude']) {
    assert.equal(await rep.page.getByLabel(name, { exact: true }).count(), 1, `${name} is labelled`);
  }

  // (1) A new emergency from the reporter's phone appears everywhere, without a reload.
  const first = await reportEmergency(rep.page, {
    type: 'Medical', severity: 'High', description: 'Runner collapsed by the fountain',
  });
  assert.equal(first.status, 'PENDING');
  assert.ok(Math.abs(first.location.lat - REPORTER_AT.latitude) < 1e-4, 'the phone position');
  await mineIs(rep.page, first.request_id, 'PENDING', 'waiting for a unit');
  await screenshot(rep.page, 'emergency-report');
  for (const d of [desk1, desk2]) {
    await rowIs(d.page, first.request_id, 'PENDING');
    assert.match(await row(d.page, first.request_id).innerText(), /Medical · High[\s\S]*Runner collapsed by the fountain/);
    await d.page.locator('#toasts .toast-created', { hasText: 'Runner collapsed by the fountain' }).waitFor({ timeout: WAIT });
  }
  await map.page.locator(`#map g.emergency-marker[data-emergency="${first.request_id}"][data-status="PENDING"]`)
    .waitFor({ timeout: WAIT });

  // Two ambulances go online from their consoles: AVAILABLE on the dashboards.
  const a1 = await unit('UNIT-A1');
  const a2 = await unit('UNIT-A2');
  for (const d of [desk1, desk2]) {
    await unitIs(d.page, 'UNIT-A1', 'AVAILABLE');
    await unitIs(d.page, 'UNIT-A2', 'AVAILABLE');
  }

  // (2) Dispatch the nearest: UNIT-A1, next to the runner. ASSIGNED, DISPATCHED, a toast, the
  // line on the map, the reporter told, the unit's console loud with where.
  const short = first.request_id.slice(0, 10);
  await row(desk1.page, first.request_id).getByRole('button', { name: `Dispatch a unit to emergency ${short}` }).click();
  for (const d of [desk1, desk2]) {
    await rowIs(d.page, first.request_id, 'ASSIGNED', 'UNIT-A1');
    await unitIs(d.page, 'UNIT-A1', 'DISPATCHED');
    await unitIs(d.page, 'UNIT-A2', 'AVAILABLE');
    await d.page.locator('#toasts .toast-assigned', { hasText: 'UNIT-A1' }).waitFor({ timeout: WAIT });
  }
  const line = `#map line.dispatch-line[data-unit="UNIT-A1"][data-emergency="${first.request_id}"]`;
  await map.page.locator(line).waitFor({ timeout: WAIT });
  await map.page.locator('#map g.unit[data-unit="UNIT-A1"][data-status="DISPATCHED"]').waitFor({ timeout: WAIT });
  assert.equal(await map.page.locator('#map line.dispatch-line').count(), 1, 'one line: one unit dispatched');
  await map.page.locator('#unit-list li[data-unit="UNIT-A1"]', { hasText: 'to Medical · High' }).waitFor({ timeout: WAIT });
  await mineIs(rep.page, first.request_id, 'ASSIGNED', 'Help is on the way: UNIT-A1 (Ambulance 1)');
  await a1.page.locator('#unit-emergency', { hasText: 'Emergency assigned: Medical · High' }).waitFor({ timeout: WAIT });
  assert.match(await a1.page.locator('#unit-emergency').innerText(), /Runner collapsed by the fountain[\s\S]*48\.859/);
  await a1.page.locator('.note-emergency', { hasText: 'Emergency: Medical · High' }).waitFor({ timeout: WAIT });
  assert.equal(await a2.page.locator('#unit-emergency').isHidden(), true, 'the other unit is not told');
  // A reload of the unit's console keeps the card (it asks the API whether it is still on).
  await a1.page.reload();
  await a1.page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  await a1.page.locator('#unit-emergency', { hasText: 'Emergency assigned: Medical · High' }).waitFor({ timeout: WAIT });

  await screenshot(map.page, 'emergency-units');

  // The unit drives towards the scene: its marker and the line's end move on the map.
  const before = await map.page.locator(line).getAttribute('x1');
  await a1.context.setGeolocation({ latitude: 48.8586, longitude: 2.3466 });
  await map.page.waitForFunction(() => {
    const g = document.querySelector('#map g.unit[data-unit="UNIT-A1"]');
    return g && Math.abs(Number(g.dataset.lat) - 48.8586) < 1e-6;
  }, null, { timeout: WAIT });
  assert.notEqual(await map.page.locator(line).getAttribute('x1'), before, 'the line follows the unit');
  await screenshot(desk1.page, 'emergency-dashboard');

  // (3) The unit completes from its console: COMPLETED, the unit AVAILABLE, the line gone.
  await a1.page.getByRole('button', { name: 'Complete emergency' }).click();
  await a1.page.locator('#unit-emergency-result', { hasText: 'you are available again' }).waitFor({ timeout: WAIT });
  for (const d of [desk1, desk2]) {
    await rowIs(d.page, first.request_id, 'COMPLETED', 'UNIT-A1');
    await unitIs(d.page, 'UNIT-A1', 'AVAILABLE');
    await d.page.locator('#toasts .toast-completed', { hasText: 'Medical · High' }).waitFor({ timeout: WAIT });
  }
  await map.page.waitForFunction(() => !document.querySelector('#map line.dispatch-line')
    && document.querySelector('#map g.unit[data-unit="UNIT-A1"]')?.dataset.status === 'AVAILABLE', null, { timeout: WAIT });
  assert.equal(await map.page.locator(`#map g.emergency-marker[data-emergency="${first.request_id}"]`).count(), 0,
    'a finished emergency leaves the map');
  await mineIs(rep.page, first.request_id, 'COMPLETED', 'Completed by UNIT-A1');
  assert.equal((await server.api('GET', `/api/v1/emergencies/${first.request_id}`)).body.status, 'COMPLETED');

  // (4) Two dashboards and the reporter in step, one dashboard dispatching by keyboard alone,
  // the other resuming after it was offline.
  await desk2.context.setOffline(true);
  await desk2.page.locator('#connection[data-state="offline"]').waitFor({ timeout: WAIT });
  const second = await reportEmergency(rep.page, {
    type: 'Accident', severity: 'Medium', description: 'Two cars, nobody trapped',
    at: { lat: 48.8785, lng: 2.3570 },
  });
  await rowIs(desk1.page, second.request_id, 'PENDING');
  await desk2.context.setOffline(false);
  await rowIs(desk2.page, second.request_id, 'PENDING');

  const short2 = second.request_id.slice(0, 10);
  const target = `Dispatch a unit to emergency ${short2}`;
  await desk2.page.evaluate(() => document.activeElement?.blur());
  let reached = false;
  for (let i = 0; i < 60 && !reached; i++) {
    await desk2.page.keyboard.press('Tab');
    reached = await desk2.page.evaluate((name) => document.activeElement?.getAttribute('aria-label') === name, target);
  }
  assert.ok(reached, 'the Dispatch button is reached with Tab');
  await desk2.page.keyboard.press('Enter');
  // The focus goes on to the row's Complete.
  await desk2.page.waitForFunction((name) => document.activeElement?.getAttribute('aria-label') === name,
    `Complete emergency ${short2}`, { timeout: WAIT });
  // The nearest to the crash is UNIT-A2.
  for (const d of [desk1, desk2]) {
    await rowIs(d.page, second.request_id, 'ASSIGNED', 'UNIT-A2');
    await unitIs(d.page, 'UNIT-A2', 'DISPATCHED');
  }
  // Still there once every message of the step has redrawn the table.
  assert.equal(await desk2.page.evaluate(() => document.activeElement?.getAttribute('aria-label')),
    `Complete emergency ${short2}`, 'redraws keep the focus');
  await mineIs(rep.page, second.request_id, 'ASSIGNED', 'Help is on the way: UNIT-A2');
  await a2.page.locator('#unit-emergency', { hasText: 'Emergency assigned: Accident · Medium' }).waitFor({ timeout: WAIT });
  await map.page.locator(`#map line.dispatch-line[data-unit="UNIT-A2"][data-emergency="${second.request_id}"]`)
    .waitFor({ timeout: WAIT });

  // Completed on the first dashboard: both dashboards and the reporter follow.
  await row(desk1.page, second.request_id).getByRole('button', { name: `Complete emergency ${short2}` }).click();
  for (const d of [desk1, desk2]) {
    await rowIs(d.page, second.request_id, 'COMPLETED', 'UNIT-A2');
    await unitIs(d.page, 'UNIT-A2', 'AVAILABLE');
  }
  await mineIs(rep.page, second.request_id, 'COMPLETED', 'Completed by UNIT-A2');
  // The unit's console hears it in its own room: the card says so, Complete is off.
  await a2.page.locator('#unit-emergency-result', { hasText: 'Accident · Medium was completed by dispatch' })
    .waitFor({ timeout: WAIT });
  assert.equal(await a2.page.getByRole('button', { name: 'Complete emergency' }).isDisabled(), true);
  assert.deepEqual(await shown(desk2.page), await shown(desk1.page), 'both dashboards show the same');

  // A chosen unit rather than the nearest: the demo's fire gets UNIT-A1, though UNIT-A2 is nearer.
  const waiting = (await server.api('GET', '/api/v1/emergencies?status=pending')).body;
  const fire = waiting.find((e) => e.reported_by === 'rep-demo' && e.type === 'fire');
  const medical = waiting.find((e) => e.reported_by === 'rep-demo' && e.type === 'medical');
  const fireShort = fire.request_id.slice(0, 10);
  await row(desk1.page, fire.request_id).getByLabel(`Unit for emergency ${fireShort}`).selectOption('UNIT-A1');
  await row(desk1.page, fire.request_id).getByRole('button', { name: `Dispatch a unit to emergency ${fireShort}` }).click();
  for (const d of [desk1, desk2]) await rowIs(d.page, fire.request_id, 'ASSIGNED', 'UNIT-A1');
  await map.page.locator(`#map line.dispatch-line[data-unit="UNIT-A1"][data-emergency="${fire.request_id}"]`)
    .waitFor({ timeout: WAIT });

  // UNIT-A2 goes offline: no unit is free, so a dispatch is refused in the row and the emergency
  // waits.
  await a2.page.getByRole('button', { name: 'Go offline' }).click();
  for (const d of [desk1, desk2]) await unitIs(d.page, 'UNIT-A2', 'OFFLINE');
  await map.page.locator('#map g.unit[data-unit="UNIT-A2"][data-status="OFFLINE"]').waitFor({ timeout: WAIT });
  await row(desk1.page, medical.request_id)
    .getByRole('button', { name: `Dispatch a unit to emergency ${medical.request_id.slice(0, 10)}` }).click();
  await row(desk1.page, medical.request_id).locator('.action-error', { hasText: 'Dispatch refused: no unit is free' })
    .waitFor({ timeout: WAIT });
  await rowIs(desk1.page, medical.request_id, 'PENDING');

  // Cancelled from the other dashboard: the unit is free, the line and the marker gone.
  await row(desk2.page, fire.request_id).getByRole('button', { name: `Cancel emergency ${fireShort}` }).click();
  for (const d of [desk1, desk2]) {
    await rowIs(d.page, fire.request_id, 'CANCELLED', 'UNIT-A1');
    await unitIs(d.page, 'UNIT-A1', 'AVAILABLE');
    await d.page.locator('#toasts .toast-cancelled', { hasText: 'Fire · Medium' }).waitFor({ timeout: WAIT });
  }
  await a1.page.locator('#unit-emergency-result', { hasText: 'Fire · Medium was cancelled by dispatch' })
    .waitFor({ timeout: WAIT });
  assert.equal(await row(desk2.page, fire.request_id).getByRole('button', { name: /^Dispatch/ }).isDisabled(), true);
  await map.page.waitForFunction((id) => !document.querySelector('#map line.dispatch-line')
    && !document.querySelector(`#map g.emergency-marker[data-emergency="${id}"]`), fire.request_id, { timeout: WAIT });
  assertClean(desk1.page, desk2.page, map.page, rep.page, a1.page, a2.page);
});

test('the dispatch dashboard does not list the units as delivery drivers', async () => {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = watch(await context.newPage(), 'dispatch');
  await signInAsStaff(page, '/dispatch');
  await page.locator('#drivers tbody tr').first().waitFor({ timeout: WAIT });
  const ids = await page.locator('#drivers tbody th').allInnerTexts();
  assert.deepEqual(ids.sort(), ['DRV-001', 'DRV-002', 'DRV-003']);
  assertClean(page);
  await context.close();
});

/** Controls with no label, no aria-label and no text: none may be. */
function unlabelled(page) {
  return page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((c) => {
      const byFor = c.id && document.querySelector(`label[for="${c.id}"]`);
      return !byFor && !c.getAttribute('aria-label') && !c.closest('label') && !(c.tagName === 'BUTTON' && c.textContent.trim());
    })
    .map((c) => c.outerHTML));
}

/** The ids (else the names) of what Tab reaches in `n` presses. */
async function tabOrder(page, n) {
  const reached = [];
  for (let i = 0; i < n; i++) {
    await page.keyboard.press('Tab');
    reached.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.getAttribute('aria-label')
      || document.activeElement?.textContent?.trim()));
  }
  return reached;
}

test('the emergency pages are labelled, in a sensible focus order, and the pin moves with the arrow keys', async () => {
  for (const path of ['/emergency/report', '/emergency', '/emergency/units']) {
    const context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
    const page = watch(await context.newPage(), path);
    await page.goto(`${server.base}${path}`);
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    assert.deepEqual(await unlabelled(page), [], `${path}: controls without a label`);
    assert.ok((await tabOrder(page, 8)).includes('Sign in'), `${path}: Tab reaches Sign in`);
    // Signed in with the keyboard alone: Enter in the first field.
    await page.locator('input').first().focus();
    if (path === '/emergency/report') await page.keyboard.type('rep-keys');
    await page.keyboard.press('Enter');
    await page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
    await page.locator('#whoami', { hasText: 'Signed in as' }).waitFor({ timeout: WAIT });
    assert.deepEqual(await unlabelled(page), [], `${path} signed in: controls without a label`);
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      `${path}: no sideways scrolling on a 360 px phone`);
    if (path === '/emergency/report') {
      await page.evaluate(() => document.activeElement?.blur());
      const order = await tabOrder(page, 8);
      assert.deepEqual(order, ['type', 'severity', 'description', 'locate', 'lat', 'lng', 'pick-map', 'Report emergency'],
        'the form in reading order');
      // The pin, moved from the keyboard on the focused map, sets the typed location.
      await page.getByLabel('Latitude').fill('48.85');
      await page.getByLabel('Longitude').fill('2.35');
      await page.locator('#pick-map').focus();
      await page.keyboard.press('ArrowUp');
      await page.keyboard.press('ArrowRight');
      assert.ok(Number(await page.getByLabel('Latitude').inputValue()) > 48.85, 'up moves north');
      assert.ok(Number(await page.getByLabel('Longitude').inputValue()) > 2.35, 'right moves east');
      await page.locator('#pick-map g.pin').waitFor({ timeout: WAIT });
      // A tap on the map's centre picks its centre.
      const box = await page.locator('#pick-map').boundingBox();
      await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
      const lat = Number(await page.getByLabel('Latitude').inputValue());
      assert.ok(Math.abs(lat - 48.85) < 0.01, `the tap picked a place near the map's centre (${lat})`);
    }
    assertClean(page);
    await context.close();
  }
});

test('a link carrying a token opens the emergency pages signed in, and takes the token out of the address bar', async () => {
  const login = async (body) => (await (await fetch(`${server.base}/api/v1/dev/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  })).json()).token;
  const admin = await login({ sub: 'link-admin', role: 'admin' });
  const reporterToken = await login({ sub: 'link-reporter', role: 'reporter' });
  for (const [path, token, who] of [
    ['/emergency', admin, 'Signed in as link-admin (admin)'],
    ['/emergency/units', admin, 'Signed in as link-admin (admin)'],
    ['/emergency/report', reporterToken, 'Signed in as link-reporter'],
  ]) {
    const context = await browser.newContext({ viewport: PHONE });
    const page = watch(await context.newPage(), path);
    await page.goto(`${server.base}${path}#token=${token}`);
    await page.locator('#whoami', { hasText: who }).waitFor({ timeout: WAIT });
    assert.equal(new URL(page.url()).hash, '', `${path}: the token is gone from the address bar`);
    assert.equal(await page.locator('#signin').isHidden(), true);
    assertClean(page);
    await context.close();
  }
});
