// Networks fail: a report made in a tunnel, and alerts missed while a phone was offline.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, driver, dashboard, report, screenshot, assertClean, sleep, WAIT,
} from './harness.mjs';

let server;
let browser;

beforeEach(async () => {
  server = await startServer('offline');
  browser = await launchBrowser();
});

afterEach(async () => {
  await browser?.close();
  await server?.stop();
});

test('a report made while offline is sent once back online: one incident, one alert each', async () => {
  const alice = await driver(browser, server.base, 'DRV-001');
  const bob = await driver(browser, server.base, 'DRV-002');
  const carol = await driver(browser, server.base, 'DRV-003');
  await alice.page.locator('#order-id', { hasText: 'ORD-1001' }).waitFor({ timeout: WAIT });

  await alice.context.setOffline(true);
  await alice.page.locator('#connection[data-state="offline"]').waitFor({ timeout: WAIT });
  await report(alice.page, 'Accident', 'Reported from the tunnel');
  const result = alice.page.locator('#report-result');
  assert.match(await result.innerText(), /will be sent as soon as the connection is back/);
  await sleep(1500);
  const before = await server.api('GET', '/api/v1/incidents');
  assert.equal(before.body.length, 0, 'nothing reached the server while offline');

  await alice.context.setOffline(false);
  await alice.page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  await alice.page.locator('#report-result.confirmed').waitFor({ timeout: WAIT });
  assert.match(await result.innerText(), /Report confirmed: Accident/);

  for (const d of [alice, bob, carol]) {
    await d.page.locator('.note-emergency', { hasText: 'Emergency reported by DRV-001' }).waitFor({ timeout: WAIT });
  }
  // Give a duplicate every chance to show up before counting.
  await sleep(2000);
  for (const d of [alice, bob, carol]) {
    assert.equal(await d.page.locator('.note-emergency').count(), 1, `${d.id} sees exactly one alert`);
  }
  const incidents = await server.api('GET', '/api/v1/incidents');
  assert.equal(incidents.status, 200);
  assert.equal(incidents.body.length, 1, 'exactly one incident');
  assert.equal(incidents.body[0].order_id, 'ORD-1001');
  assert.equal(incidents.body[0].kind, 'accident');
  assertClean(alice.page, bob.page, carol.page);
});

test('a phone that lost its connection shows the alert it missed, without a reload', async () => {
  const desk = await dashboard(browser, server.base);
  const alice = await driver(browser, server.base, 'DRV-001');
  const bob = await driver(browser, server.base, 'DRV-002');
  await alice.page.locator('#order-id', { hasText: 'ORD-1001' }).waitFor({ timeout: WAIT });
  const loaded = await bob.page.evaluate(() => performance.timeOrigin);

  await bob.context.setOffline(true);
  await bob.page.locator('#connection[data-state="offline"]').waitFor({ timeout: WAIT });
  const red = await bob.page.locator('#connection').evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.equal(red, 'rgb(229, 72, 77)', 'the dot is red while offline');
  await screenshot(bob.page, 'driver-console-offline');

  await report(alice.page, 'Vehicle breakdown');
  await alice.page.locator('#report-result.confirmed').waitFor({ timeout: WAIT });
  await desk.page.locator('#incidents li', { hasText: 'order ORD-1001' }).waitFor({ timeout: WAIT });
  await sleep(500);
  assert.equal(await bob.page.locator('.note-emergency').count(), 0, 'nothing reached the offline phone');

  await bob.context.setOffline(false);
  await bob.page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  const green = await bob.page.locator('#connection').evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.equal(green, 'rgb(47, 179, 68)', 'the dot is green again');
  const alert = bob.page.locator('.note-emergency', { hasText: 'Emergency reported by DRV-001' });
  await alert.waitFor({ timeout: WAIT });
  assert.match(await alert.innerText(), /Vehicle breakdown/);
  // Bob was the free driver: the order was given to him while he was away, and he sees it.
  await bob.page.locator('.note-assigned', { hasText: 'Order assigned to you!' }).waitFor({ timeout: WAIT });
  await bob.page.locator('#order-id', { hasText: 'ORD-1001' }).waitFor({ timeout: WAIT });

  const states = await bob.page.evaluate(() => window.seenStates);
  assert.deepEqual([states[0], states.at(-1)], ['connected', 'connected']);
  assert.ok(states.includes('offline'), `the dot went red: ${states.join(' → ')}`);
  assert.equal(await bob.page.evaluate(() => performance.timeOrigin), loaded, 'the page was not reloaded');
  await sleep(1000);
  assert.equal(await bob.page.locator('.note-emergency').count(), 1, 'the missed alert shows once');
  assertClean(alice.page, bob.page, desk.page);
});
