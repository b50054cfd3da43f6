// The customer's tracking page in a real browser: a customer on a 375 px phone follows its order
// from assigned to delivered, through an emergency that moves it to another courier, while the
// drivers work on their own consoles; a second customer opening the same link sees nothing of it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, driver, report, screenshot, assertClean, watch, WAIT,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer('track');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const PHONE_375 = { width: 375, height: 740 };
const ORDER = 'ORD-T1';

/** A customer's phone on `/track/ORD-T1`, signed in with the keyboard; every frame it receives
 *  is kept in `frames`. */
async function customer(id) {
  const context = await browser.newContext({ viewport: PHONE_375, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = watch(await context.newPage(), id);
  const frames = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => {
    try {
      frames.push(JSON.parse(f.payload));
    } catch {
      // Not JSON: nothing the page would read.
    }
  }));
  await page.goto(`${server.base}/track/${ORDER}`);
  await page.getByLabel('Customer ID').fill(id);
  await page.keyboard.press('Enter');
  await page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  return { context, page, frames };
}

async function currentStep(page, step) {
  await page.locator(`#steps li[data-step="${step}"][aria-current="step"]`).waitFor({ timeout: WAIT });
  assert.equal(await page.locator('#steps li[aria-current="step"]').count(), 1, 'one current step');
}

async function markerAt(page) {
  return page.locator('#courier-marker').getAttribute('transform', { timeout: WAIT });
}

test('a customer follows its order from assigned to delivered, through a reassignment', async () => {
  // Alice is made free (the demo gave her ORD-1001), so that Bob's order can go to her.
  assert.equal((await server.api('POST', '/api/v1/orders/ORD-1001/cancel')).status, 200);
  const alice = await driver(browser, server.base, 'DRV-001');
  const bob = await driver(browser, server.base, 'DRV-002');
  const created = await server.api('POST', '/api/v1/orders', {
    id: ORDER,
    pickup: { lat: 48.8612, lng: 2.3425 },
    dropoff: { lat: 48.8655, lng: 2.3290 },
    driver_id: 'DRV-002',
    customer_id: 'C-1',
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));

  const carol = await customer('C-1');
  const dave = await customer('C-2');

  // Dave's page of the same link: an error, and nothing of the order.
  await dave.page.locator('#track-error').waitFor({ timeout: WAIT });
  assert.match(await dave.page.locator('#track-error').innerText(), /no order ORD-T1 for you/);
  assert.equal(await dave.page.locator('#tracking').isHidden(), true);

  // Carol: the order, assigned to Bob, with its ETA.
  await currentStep(carol.page, 'assigned');
  assert.equal(await carol.page.locator('#steps li.done').count(), 1, 'received is done');
  await carol.page.locator('#courier', { hasText: 'DRV-002' }).waitFor({ timeout: WAIT });
  assert.match(await carol.page.locator('#eta').innerText(), /\d{1,2}:\d{2}/);

  // Bob accepts and picks it up on his console; Carol sees the step.
  await bob.page.locator('#order-id', { hasText: ORDER }).waitFor({ timeout: WAIT });
  await bob.page.getByRole('button', { name: 'Accept' }).click();
  await bob.page.getByRole('button', { name: 'Mark picked up' }).click();
  await currentStep(carol.page, 'picked_up');

  // Bob's phone moves: the courier moves on Carol's map.
  await carol.page.locator('#courier-marker').waitFor({ timeout: WAIT });
  const first = await markerAt(carol.page);
  await bob.context.setGeolocation({ latitude: 48.8640, longitude: 2.3340 });
  await carol.page.waitForFunction((t) => {
    const m = document.querySelector('#courier-marker');
    return m && m.getAttribute('transform') !== t;
  }, first, { timeout: WAIT });
  assert.match(await carol.page.locator('#courier-where').innerText(), /Your courier is [\d.]+ (m|km) from your address/);

  // Bob's vehicle breaks down: the order goes to Alice. Carol sees a new courier and an ETA,
  // and nothing of the incident.
  await report(bob.page, 'Vehicle breakdown', 'Engine smoke on the quay');
  await carol.page.locator('#courier', { hasText: 'DRV-001' }).waitFor({ timeout: WAIT });
  await carol.page.locator('#courier-note', { hasText: 'A new courier, DRV-001' }).waitFor({ timeout: WAIT });
  await currentStep(carol.page, 'assigned');
  assert.match(await carol.page.locator('#eta').innerText(), /\d{1,2}:\d{2}/);
  const seen = await carol.page.locator('body').innerText();
  assert.doesNotMatch(seen, /breakdown|engine|smoke|risk|incident|emergency/i);

  // Alice takes it through; Carol's phone loses the network while it is picked up, and catches up.
  await alice.page.locator('#order-id', { hasText: ORDER }).waitFor({ timeout: WAIT });
  await alice.page.getByRole('button', { name: 'Accept' }).click();
  await carol.context.setOffline(true);
  await carol.page.locator('#connection:not([data-state="connected"])').waitFor({ timeout: WAIT });
  await alice.page.getByRole('button', { name: 'Mark picked up' }).click();
  await alice.page.getByRole('button', { name: 'Mark out for delivery' }).waitFor({ timeout: WAIT });
  await carol.context.setOffline(false);
  await carol.page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  await currentStep(carol.page, 'picked_up');
  await alice.page.getByRole('button', { name: 'Mark out for delivery' }).click();
  await currentStep(carol.page, 'out_for_delivery');
  await carol.page.locator('#courier-marker').waitFor({ timeout: WAIT });
  assert.equal(await carol.page.locator('#steps li.done').count(), 3);
  // Screen readers hear each step once (not every courier move).
  assert.match(await carol.page.locator('#status-live').textContent(), /^Out for delivery\. Arriving around \d{1,2}:\d{2}/);

  // A phone page: nothing wider than the screen, targets a thumb can hit.
  const widths = await carol.page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(widths[0] <= widths[1], `no horizontal scroll at 375 px: ${widths}`);
  await screenshot(carol.page, 'customer-track');

  await alice.page.getByRole('button', { name: 'Mark delivered' }).click();
  await currentStep(carol.page, 'delivered');
  assert.equal(await carol.page.locator('#steps li.done').count(), 4);
  assert.equal(await carol.page.locator('#eta').innerText(), 'delivered');
  assert.equal(await carol.page.locator('#status-live').textContent(), 'Delivered.');
  await carol.page.locator('#courier-marker').waitFor({ state: 'detached', timeout: WAIT });

  // Carol's socket brought only what a customer may have; Dave's nothing of ORD-T1 at all.
  const allowed = new Set(['welcome', 'joined', 'ack', 'pong', 'order_updated', 'courier_location']);
  for (const f of carol.frames) assert.ok(allowed.has(f.type), `the customer got ${JSON.stringify(f)}`);
  assert.ok(carol.frames.some((f) => f.type === 'courier_location'), 'the courier positions came');
  assert.equal(dave.frames.filter((f) => JSON.stringify(f).includes(ORDER)).length, 0, 'nothing of the order reached Dave');
  assert.equal(await dave.page.locator('#tracking').isHidden(), true);
  assert.doesNotMatch(await dave.page.locator('body').innerText(), /DRV-00|Picked up|Delivered/);
  assertClean(alice.page, bob.page, carol.page, dave.page);
});

test('a link carrying the token opens the page signed in; a cancelled order says so', async () => {
  const created = await server.api('POST', '/api/v1/orders', {
    id: 'ORD-T2',
    pickup: { lat: 48.8612, lng: 2.3425 },
    dropoff: { lat: 48.8655, lng: 2.3290 },
    customer_id: 'C-1',
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const login = await fetch(`${server.base}/api/v1/dev/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sub: 'customer-C-1', role: 'customer', customer_id: 'C-1' }),
  });
  const { token } = await login.json();
  const context = await browser.newContext({ viewport: PHONE_375, isMobile: true, hasTouch: true });
  const page = watch(await context.newPage(), 'C-1 link');
  await page.goto(`${server.base}/track/ORD-T2#token=${token}`);
  await page.locator('#tracking').waitFor({ timeout: WAIT });
  assert.equal(await page.locator('#signin').isHidden(), true, 'no sign-in asked');
  assert.equal(new URL(page.url()).hash, '', 'the token is taken out of the address bar');
  await page.locator('#order-id', { hasText: 'ORD-T2' }).waitFor({ timeout: WAIT });

  assert.equal((await server.api('POST', '/api/v1/orders/ORD-T2/cancel')).status, 200);
  await page.locator('#cancelled').waitFor({ state: 'visible', timeout: WAIT });
  assert.equal(await page.locator('#steps li[aria-current]').count(), 0, 'no step is current');
  assert.equal(await page.locator('#steps li.skipped').count(), 5);
  assert.equal(await page.locator('#eta').innerText(), '—');
  assert.equal(await page.locator('#courier-marker').count(), 0);
  assertClean(page);
});
