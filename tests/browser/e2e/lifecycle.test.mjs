// A driver's day on the console: an order offered and declined, one accepted and taken through
// to delivery, watched from the dashboard; and a phone that shares no position.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, driver, dashboard, assertClean, WAIT,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer('lifecycle');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const newOrder = (id) => ({
  id,
  pickup: { lat: 48.8600, lng: 2.3450 },
  dropoff: { lat: 48.8700, lng: 2.3300 },
  priority: 'high',
  driver_id: 'DRV-002',
});

test('decline an offer; accept one and take it through picked up, out for delivery, delivered', async () => {
  const desk = await dashboard(browser, server.base);
  const bob = await driver(browser, server.base, 'DRV-002');

  const created = await server.api('POST', '/api/v1/orders', newOrder('ORD-2001'));
  assert.equal(created.status, 201, JSON.stringify(created.body));
  await bob.page.locator('.note-assigned', { hasText: 'ORD-2001' }).waitFor({ timeout: WAIT });
  await bob.page.locator('#order-id', { hasText: 'ORD-2001' }).waitFor({ timeout: WAIT });
  assert.equal(await bob.page.locator('#order-priority').innerText(), 'high');
  await bob.page.getByRole('button', { name: 'Decline' }).click();
  await bob.page.locator('#no-order').waitFor({ state: 'visible', timeout: WAIT });
  // Alice and Carol are full: the declined order waits for a driver.
  const row1 = desk.page.locator('#orders tbody tr[data-key="ORD-2001"]');
  await row1.locator('.badge', { hasText: 'Waiting for a driver' }).waitFor({ timeout: WAIT });

  assert.equal((await server.api('POST', '/api/v1/orders', newOrder('ORD-2002'))).status, 201);
  await bob.page.locator('#order-id', { hasText: 'ORD-2002' }).waitFor({ timeout: WAIT });
  await bob.page.getByRole('button', { name: 'Accept' }).click();
  const row2 = desk.page.locator('#orders tbody tr[data-key="ORD-2002"]');
  for (const [button, word] of [
    ['Mark picked up', 'Picked up'],
    ['Mark out for delivery', 'Out for delivery'],
  ]) {
    await bob.page.getByRole('button', { name: button }).click();
    await bob.page.locator('#order-status', { hasText: word }).waitFor({ timeout: WAIT });
    await row2.locator('.badge', { hasText: word }).waitFor({ timeout: WAIT });
  }
  await bob.page.getByRole('button', { name: 'Mark delivered' }).click();
  await bob.page.locator('.note', { hasText: 'Order ORD-2002 delivered' }).waitFor({ timeout: WAIT });
  await bob.page.locator('#no-order').waitFor({ state: 'visible', timeout: WAIT });
  await row2.locator('.badge', { hasText: 'Delivered' }).waitFor({ timeout: WAIT });
  const stored = await server.api('GET', '/api/v1/orders/ORD-2002');
  assert.equal(stored.body.status, 'delivered');
  assert.equal(stored.body.driver_id, 'DRV-002');
  assertClean(bob.page, desk.page);
});

test('a phone that shares no position drives a simulated route, drawn with its heading', async () => {
  const desk = await dashboard(browser, server.base);
  // No geolocation permission: the console falls back to its simulated route.
  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const page = await context.newPage();
  await page.goto(`${server.base}/driver`);
  await page.getByLabel('Driver ID').fill('DRV-003');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  await page.getByRole('button', { name: 'Go online' }).click();
  const arrow = desk.page.locator('#map g[data-driver="DRV-003"] polygon.heading');
  await arrow.waitFor({ timeout: WAIT });
  assert.match(await arrow.getAttribute('transform'), /^rotate\(-?\d/);
  const where = await desk.page.locator('#drivers tbody tr[data-key="DRV-003"] td').nth(3).innerText();
  assert.match(where, /^48\.8\d+, 2\.3\d+$/, 'near Carol\'s demo spot');
  // Counts: the dashboard sees the drivers by status and the connections.
  await desk.page.locator('#count-connections', { hasText: /^[2-9]\d*$/ }).waitFor({ timeout: WAIT });
  await context.close();
});
