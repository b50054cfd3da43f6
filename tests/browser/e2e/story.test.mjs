// The emergency story in a real browser: three drivers on their phones, a dispatcher on a wall
// screen, and Alice's vehicle breaks down.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, driver, dashboard, report, screenshot, assertClean, WAIT,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer('story');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the emergency story: report, reassignment, alerts and the dashboard', async () => {
  const desk = await dashboard(browser, server.base);
  const alice = await driver(browser, server.base, 'DRV-001');
  const bob = await driver(browser, server.base, 'DRV-002');
  const carol = await driver(browser, server.base, 'DRV-003');

  // Alice was given ORD-1001 by the demo: she sees it with its pickup and drop-off, and accepts.
  await assert.doesNotReject(alice.page.locator('#order-id', { hasText: 'ORD-1001' }).waitFor({ timeout: WAIT }));
  assert.match(await alice.page.locator('#order-pickup').innerText(), /48\.8566, 2\.3522/);
  assert.match(await alice.page.locator('#order-dropoff').innerText(), /48\.8738, 2\.2950/);
  await alice.page.getByRole('button', { name: 'Accept' }).click();
  await alice.page.getByRole('button', { name: 'Mark picked up' }).waitFor({ timeout: WAIT });

  // Drivers already online saw the later ones come online (blue).
  for (const [who, other] of [[alice, 'DRV-002'], [alice, 'DRV-003'], [bob, 'DRV-003']]) {
    await who.page.locator('.note-presence', { hasText: `Driver ${other} is now online` }).first().waitFor({ timeout: WAIT });
  }

  // The dashboard shows the drivers on the map once their positions arrive.
  for (const id of ['DRV-001', 'DRV-002', 'DRV-003']) {
    await desk.page.locator(`#map g[data-driver="${id}"]`).waitFor({ timeout: WAIT });
  }
  await screenshot(alice.page, 'driver-console-before');

  await report(alice.page, 'Vehicle breakdown', 'Engine failure on the ring road');

  // Alice: her report confirmed with the risk, and the order gone.
  const result = alice.page.locator('#report-result.confirmed');
  await result.waitFor({ timeout: WAIT });
  const confirmed = await result.innerText();
  assert.match(confirmed, /Report confirmed/);
  assert.match(confirmed, /Risk \d{1,3}%/);
  assert.match(confirmed, /reassigned to DRV-002/);
  await alice.page.locator('#no-order').waitFor({ state: 'visible', timeout: WAIT });
  assert.equal(await alice.page.locator('#order').isHidden(), true);

  // Bob: green "Order assigned to you!" with the order, and the order on his console.
  const assigned = bob.page.locator('.note-assigned', { hasText: 'Order assigned to you!' });
  await assigned.waitFor({ timeout: WAIT });
  assert.match(await assigned.innerText(), /ORD-1001/);
  await bob.page.locator('#order-id', { hasText: 'ORD-1001' }).waitFor({ timeout: WAIT });
  assert.equal(await carol.page.locator('.note-assigned').count(), 0, 'only the new driver is told');

  // Carol (and everyone): the red emergency alert with the reason, the risk and the action.
  for (const d of [carol, bob, alice]) {
    const alert = d.page.locator('.note-emergency', { hasText: 'Emergency reported by DRV-001' });
    await alert.waitFor({ timeout: WAIT });
    const text = await alert.innerText();
    assert.match(text, /Vehicle breakdown/, `${d.id} sees the reason`);
    assert.match(text, /Risk \d{1,3}%/, `${d.id} sees the risk`);
    assert.match(text, /Order reassigned to DRV-002/, `${d.id} sees the action`);
  }
  const red = await carol.page.locator('.note-emergency').evaluate((e) => getComputedStyle(e).borderLeftColor);
  assert.equal(red, 'rgb(179, 38, 30)', 'the alert is red');

  // The dashboard: the incident in the feed, and the order on Bob.
  const incident = desk.page.locator('#incidents li', { hasText: 'order ORD-1001' });
  await incident.waitFor({ timeout: WAIT });
  const itext = await incident.innerText();
  assert.match(itext, /Vehicle breakdown/);
  assert.match(itext, /Risk \d{1,3}%/);
  assert.match(itext, /Order reassigned → DRV-002/);
  const row = desk.page.locator('#orders tbody tr[data-key="ORD-1001"]');
  await row.locator('td', { hasText: 'DRV-002' }).first().waitFor({ timeout: WAIT });
  await desk.page.locator('#map line.assignment[data-order="ORD-1001"][data-driver="DRV-002"]').waitFor({ timeout: WAIT });

  await screenshot(bob.page, 'driver-console');
  await screenshot(carol.page, 'driver-console-alert');
  await screenshot(desk.page, 'dashboard');
  assertClean(alice.page, bob.page, carol.page, desk.page);
});
