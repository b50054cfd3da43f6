// The crowd operator page, /ops/{event_id} (SPEC 8), in a real browser: two operator tabs of one
// event see an alert (a camera count over the threshold posted over REST), a resolve clicked in
// one of them, an action and the density map change at the same time without a reload; a tab of
// another event sees none of it. Plus the risk meter, a resume after going offline, a Resolve by
// keyboard alone and the page on a 360 px phone. Assertions read the DOM: the canvas writes what
// it draws on its data attributes and the zone list beside it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, screenshot, assertClean, watch, WAIT, PHONE, DESKTOP,
} from './harness.mjs';

let server;
let browser;

/** Two stands of a stadium, and another event elsewhere. */
const NORTH = { south: 48.8410, west: 2.2520, north: 48.8420, east: 2.2545 };
const SOUTH = { south: 48.8392, west: 2.2520, north: 48.8402, east: 2.2545 };
const EVENT_A = {
  id: 'OPS-A',
  name: 'Cup final',
  zones: [
    { id: 'north', name: 'North stand', capacity: 100, threshold: 50, bounds: NORTH },
    { id: 'south', name: 'South stand', capacity: 100, threshold: 50, bounds: SOUTH },
  ],
};
const EVENT_B = {
  id: 'OPS-B',
  name: 'Harbour concert',
  zones: [{ id: 'quay', name: 'Quay', capacity: 500, bounds: { south: 43.29, west: 5.36, north: 43.30, east: 5.38 } }],
};

before(async () => {
  server = await startServer('ops');
  browser = await launchBrowser();
  for (const e of [EVENT_A, EVENT_B]) {
    const res = await server.api('POST', '/api/v1/events', e);
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** An operator's tab of `event`, signed in with the dev login for that event. */
async function opsTab(label, event, viewport = DESKTOP) {
  const phone = viewport === PHONE;
  const context = await browser.newContext({ viewport, isMobile: phone, hasTouch: phone });
  const page = watch(await context.newPage(), label);
  await page.goto(`${server.base}/ops/${event.id}`);
  await page.getByLabel('User').fill(`op-${label}`);
  await page.getByLabel('Role').selectOption('operator');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  await page.waitForFunction((n) => document.querySelectorAll('#zones li').length === n,
    event.zones.length, { timeout: WAIT });
  return { context, page };
}

const count = (zone, n, camera = 'cam-1') =>
  server.api('POST', '/api/v1/cctv/objects', { event_id: 'OPS-A', zone_id: zone, camera_id: camera, count: n });

async function alertIs(page, zone, status, severity) {
  const sev = severity ? `[data-severity="${severity}"]` : '';
  await page.locator(`#alerts li[data-zone="${zone}"][data-status="${status}"]${sev}`).first().waitFor({ timeout: WAIT });
}

test('two operator tabs follow one event live; another event sees none of it', async () => {
  const a1 = await opsTab('a1', EVENT_A);
  const a2 = await opsTab('a2', EVENT_A);
  const b = await opsTab('b', EVENT_B);
  assert.equal(await a1.page.locator('#event-name').textContent(), 'Cup final');

  // The risk meter: the page asks for the first insight, the built-in model answers.
  for (const t of [a1, a2]) {
    await t.page.locator('#risk[data-ml-status="model"]').waitFor({ timeout: WAIT });
    await t.page.locator('#predictions li[data-zone="north"]').waitFor({ timeout: WAIT });
  }

  // A camera counts 80 in the North stand, over its threshold of 50: an alert in both tabs,
  // the zone red on the map, announced to screen readers.
  const res = await count('north', 80);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.alert.status, 'open');
  for (const t of [a1, a2]) {
    await alertIs(t.page, 'north', 'open', 'warning');
    await t.page.locator('#zones li[data-zone="north"][data-alerting="true"][data-count="80"]').waitFor({ timeout: WAIT });
    await t.page.locator('#map[data-alerting="north"]').waitFor({ timeout: WAIT });
    await t.page.locator('#announce', { hasText: 'New warning alert in North stand' }).waitFor({ timeout: WAIT });
  }

  // Resolved in one tab: both show it resolved, the zone no longer red.
  await a1.page.getByRole('button', { name: 'Resolve alert in North stand' }).click();
  for (const t of [a1, a2]) {
    await alertIs(t.page, 'north', 'resolved');
    await t.page.locator('#zones li[data-zone="north"][data-alerting="false"]').waitFor({ timeout: WAIT });
    await t.page.locator('#open-count[data-open="0"]').waitFor({ timeout: WAIT });
  }
  assert.equal(await a2.page.getByRole('button', { name: 'Resolve alert in North stand' }).count(), 0);

  // An action from the other tab, for the South stand.
  await a2.page.getByLabel('Zone', { exact: true }).selectOption({ label: 'South stand' });
  await a2.page.getByRole('button', { name: 'Open Gate 3' }).click();
  for (const t of [a1, a2]) {
    await t.page.locator('#actions li[data-command="Open Gate 3"][data-zone="south"]').waitFor({ timeout: WAIT });
  }

  // Twelve phones in the North stand: both maps show them, in the stand.
  for (let i = 0; i < 12; i++) {
    const ping = await server.api('POST', '/api/v1/pings', {
      event_id: 'OPS-A', device_id: `phone-${i}`, lat: 48.8412 + (i % 4) * 0.0002, lng: 2.2525 + Math.floor(i / 4) * 0.0006,
    });
    assert.equal(ping.status, 200, JSON.stringify(ping.body));
  }
  for (const t of [a1, a2]) {
    await t.page.locator('#map[data-devices="12"]').waitFor({ timeout: WAIT });
    await t.page.locator('#zones li[data-zone="north"][data-devices="12"]').waitFor({ timeout: WAIT });
    assert.match(await t.page.locator('#map').getAttribute('aria-label'), /12 live devices/);
  }

  // A report to the other event reaches its tab, which has seen nothing of the first event.
  const rep = await server.api('POST', '/api/v1/reports', { event_id: 'OPS-B', message: 'Quay gates open', type: 'info' });
  assert.equal(rep.status, 201, JSON.stringify(rep.body));
  await b.page.locator('#reports li[data-type="info"]', { hasText: 'Quay gates open' }).waitFor({ timeout: WAIT });
  assert.equal(await b.page.locator('#alerts li').count(), 0, 'no alert of OPS-A on OPS-B');
  assert.equal(await b.page.locator('#actions li').count(), 0, 'no action of OPS-A on OPS-B');
  assert.equal(await b.page.locator('#map').getAttribute('data-devices'), '0', 'no device of OPS-A on OPS-B');
  assert.equal(await a1.page.locator('#reports li').count(), 0, 'no report of OPS-B on OPS-A');

  // A tab that was offline resumes: the report sent meanwhile arrives without a reload.
  await a2.context.setOffline(true);
  await a2.page.locator('#connection[data-state="offline"]').waitFor({ timeout: WAIT });
  const missed = await server.api('POST', '/api/v1/reports', { event_id: 'OPS-A', message: 'Queue at gate 5', type: 'steward' });
  assert.equal(missed.status, 201);
  await a1.page.locator('#reports li', { hasText: 'Queue at gate 5' }).waitFor({ timeout: WAIT });
  await a2.context.setOffline(false);
  await a2.page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  await a2.page.locator('#reports li[data-type="steward"]', { hasText: 'Queue at gate 5' }).waitFor({ timeout: WAIT });

  // Resolve by keyboard alone: a new alert in the South stand, reached with Tab, pressed with
  // Enter; the focus then goes to the alerts' title.
  await count('south', 60);
  await alertIs(a1.page, 'south', 'open');
  await alertIs(a2.page, 'south', 'open');
  await a1.page.evaluate(() => document.activeElement?.blur());
  let reached = false;
  for (let i = 0; i < 40 && !reached; i++) {
    await a1.page.keyboard.press('Tab');
    reached = await a1.page.evaluate(() => document.activeElement?.getAttribute('aria-label') === 'Resolve alert in South stand');
  }
  assert.ok(reached, 'the Resolve button is reached with Tab');
  await a1.page.keyboard.press('Enter');
  for (const t of [a1, a2]) await alertIs(t.page, 'south', 'resolved');
  await a1.page.waitForFunction(() => document.activeElement?.id === 'alerts-title', null, { timeout: WAIT });

  // The wall screen, with a critical alert open: the North stand past its capacity after it
  // went quiet.
  await count('north', 20);
  await count('north', 130);
  await alertIs(a1.page, 'north', 'open', 'critical');
  await a1.page.locator('#map[data-alerting="north"]').waitFor({ timeout: WAIT });
  // A new insight (asked by anyone) reaches both meters: the stand past capacity is a risk.
  const predicted = await server.api('POST', '/api/v1/ai/predictions', { event_id: 'OPS-A' });
  assert.equal(predicted.status, 200, JSON.stringify(predicted.body));
  const north = predicted.body.predictions.find((p) => p.zoneId === 'north');
  for (const t of [a1, a2]) {
    await t.page.locator(`#predictions li[data-zone="north"][data-risk="${Number(north.risk).toFixed(2)}"]`).waitFor({ timeout: WAIT });
  }
  const asked = await server.api('POST', '/api/v1/ai/insights', { event_id: 'OPS-A' });
  assert.equal(asked.status, 200, JSON.stringify(asked.body));
  assert.ok(asked.body.riskScore > 0.5, JSON.stringify(asked.body));
  const score = Number(asked.body.riskScore).toFixed(2);
  for (const t of [a1, a2]) {
    await t.page.locator(`#risk[data-score="${score}"]`).waitFor({ timeout: WAIT });
    assert.equal(await t.page.locator('#risk-recommendation').textContent(), asked.body.recommendation);
  }
  await screenshot(a1.page, 'ops');

  assertClean(a1.page, a2.page, b.page);
  for (const t of [a1, a2, b]) await t.context.close();
});

test('the operator page on a 360 px phone: nothing wider than the screen, Resolve by touch', async () => {
  const phone = await opsTab('phone', EVENT_A, PHONE);
  await alertIs(phone.page, 'north', 'open', 'critical');
  const wide = await phone.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(wide <= 0, `the page is ${wide} px wider than the phone`);
  // The alerts come first on a phone.
  const [alertsTop, mapTop] = await phone.page.evaluate(() =>
    ['#alerts-title', '#map-title'].map((s) => document.querySelector(s).getBoundingClientRect().top));
  assert.ok(alertsTop < mapTop, 'the alerts are above the map on a phone');
  const button = phone.page.getByRole('button', { name: 'Resolve alert in North stand' });
  const box = await button.boundingBox();
  assert.ok(box && box.height >= 44, 'the Resolve button is large enough to tap');
  await button.tap();
  await alertIs(phone.page, 'north', 'resolved');
  await screenshot(phone.page, 'ops-phone');
  assertClean(phone.page);
  await phone.context.close();
});

/** A token from the dev login, for a link's fragment. */
async function tokenFor(body) {
  const res = await fetch(`${server.base}/api/v1/dev/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  return (await res.json()).token;
}

test('a link with #token= opens signed in; a token of another event is told it may not watch', async () => {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = watch(await context.newPage(), 'link');
  const token = await tokenFor({ sub: 'op-link', role: 'operator', events: ['OPS-A'] });
  await page.goto(`${server.base}/ops/OPS-A#token=${token}`);
  await page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  await page.waitForFunction(() => document.querySelectorAll('#zones li').length === 2, null, { timeout: WAIT });
  assert.equal(new URL(page.url()).hash, '', 'the token leaves the address bar');
  assert.ok(await page.locator('#signin').isHidden());
  await page.locator('#actions li[data-command="Open Gate 3"]').waitFor({ timeout: WAIT });

  // The same tab on another event's page: its token does not name OPS-B.
  await page.goto(`${server.base}/ops/OPS-B`);
  await page.locator('#whoami', { hasText: 'may not watch OPS-B' }).waitFor({ timeout: WAIT });
  assert.equal(await page.locator('#alerts li').count(), 0);
  assertClean(page);
  await context.close();
});
