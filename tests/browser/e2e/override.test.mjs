// The admin override from the dashboard: one that moves an order, one the server refuses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, driver, dashboard, assertClean, WAIT,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer('override');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('an override moves an order and both drivers see it; a refused one shows the error', async () => {
  const desk = await dashboard(browser, server.base);
  const alice = await driver(browser, server.base, 'DRV-001');
  const bob = await driver(browser, server.base, 'DRV-002');
  await alice.page.locator('#order-id', { hasText: 'ORD-1001' }).waitFor({ timeout: WAIT });

  const row = desk.page.locator('#orders tbody tr[data-key="ORD-1001"]');
  // Carol never signed in: DRV-003 is offline, and the server refuses to give her the order.
  await row.getByLabel('New driver for order ORD-1001').selectOption('DRV-003');
  await row.getByRole('button', { name: /Override/ }).click();
  const error = row.locator('.override-error');
  await error.filter({ hasText: 'Override refused' }).waitFor({ timeout: WAIT });
  assert.match(await error.innerText(), /offline/);
  assert.equal(await row.locator('td').nth(1).innerText(), 'DRV-001', 'the order did not move');

  await row.getByLabel('New driver for order ORD-1001').selectOption('DRV-002');
  await row.getByRole('button', { name: /Override/ }).click();
  await error.filter({ hasText: 'Moved to DRV-002' }).waitFor({ timeout: WAIT });
  await row.locator('td', { hasText: 'DRV-002' }).first().waitFor({ timeout: WAIT });

  // Alice loses it, Bob gets it.
  await alice.page.locator('#no-order').waitFor({ state: 'visible', timeout: WAIT });
  await alice.page.locator('.note', { hasText: 'Order ORD-1001 was taken off you' }).waitFor({ timeout: WAIT });
  const assigned = bob.page.locator('.note-assigned', { hasText: 'Order assigned to you!' });
  await assigned.waitFor({ timeout: WAIT });
  assert.match(await assigned.innerText(), /ORD-1001/);
  await bob.page.locator('#order-id', { hasText: 'ORD-1001' }).waitFor({ timeout: WAIT });

  const audit = await server.api('GET', '/api/v1/audit');
  assert.equal(audit.body.length, 1, 'the override was audited once (the refused one changed nothing)');
  assert.equal(audit.body[0].to_driver_id, 'DRV-002');
  assertClean(alice.page, bob.page, desk.page);
});

test('the pages can be used with the keyboard and every control has a label', async () => {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const page = await context.newPage();
  for (const path of ['/driver', '/dispatch']) {
    await page.goto(`${server.base}${path}`);
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
      .filter((c) => {
        const byFor = c.id && document.querySelector(`label[for="${c.id}"]`);
        return !byFor && !c.getAttribute('aria-label') && !c.closest('label') && !(c.tagName === 'BUTTON' && c.textContent.trim());
      })
      .map((c) => c.outerHTML));
    assert.deepEqual(unlabelled, [], `${path}: controls without a label`);
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    // Tab reaches the sign-in form's fields and its button.
    const reached = [];
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab');
      reached.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim()));
    }
    assert.ok(reached.includes('Sign in'), `${path}: Tab reaches the Sign in button (${reached.join(', ')})`);
  }
  // The signed-in driver console (a new driver, registered on the spot): Tab reaches Go online
  // and the report form.
  await page.goto(`${server.base}/driver`);
  await page.getByLabel('Driver ID').fill('DRV-777');
  await page.keyboard.press('Enter');
  await page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  const reached = [];
  for (let i = 0; i < 14; i++) {
    await page.keyboard.press('Tab');
    reached.push(await page.evaluate(() => document.activeElement?.id));
  }
  assert.ok(reached.includes('go-online'), reached.join(', '));
  assert.ok(reached.includes('report-kind'), reached.join(', '));
  await context.close();
});

test('a redraw keeps the keyboard focus where the dispatcher is', async () => {
  const desk = await dashboard(browser, server.base);
  const select = desk.page.getByLabel('New driver for order ORD-1002');
  await select.focus();
  // A new order (sorted among the rows) redraws every table.
  const created = await server.api('POST', '/api/v1/orders', {
    id: 'ORD-3001',
    pickup: { lat: 48.8600, lng: 2.3450 },
    dropoff: { lat: 48.8700, lng: 2.3300 },
    priority: 'low',
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  await desk.page.locator('#orders tbody tr[data-key="ORD-3001"]').waitFor({ timeout: WAIT });
  assert.equal(await desk.page.evaluate(() => document.activeElement?.id), 'override-ORD-1002',
    'the focus stayed on the list the dispatcher was on');
  assertClean(desk.page);
});
