// The SOS button in a real browser: a tap sends nothing, a hold of 1.5 s sends one SOS with the
// phone's position and the driver's message, and the console shows the answer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, driver, screenshot, assertClean, sleep, WAIT, SPOTS,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer('sos');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Counts the `sos` messages a page writes to its socket. */
function countSos(page) {
  const sent = [];
  page.on('websocket', (ws) => ws.on('framesent', (f) => {
    try {
      const m = JSON.parse(f.payload);
      if (m.type === 'sos') sent.push(m);
    } catch {
      // Not JSON.
    }
  }));
  return sent;
}

async function openAlerts() {
  const res = await server.api('GET', '/api/v1/sos?open=true');
  assert.equal(res.status, 200);
  return res.body;
}

test('the SOS button: a tap sends nothing, a hold sends one SOS', async () => {
  const bob = await driver(browser, server.base, 'DRV-002', { online: false });
  const sent = countSos(bob.page);
  // The socket is watched from now on: reconnect so that its frames are seen.
  await bob.page.reload();
  await bob.page.locator('#connection[data-state="connected"]').waitFor({ timeout: WAIT });
  const button = bob.page.getByRole('button', { name: 'SOS' });

  // A tap, a click and a short press: nothing is sent, and the console says how to send.
  await button.tap();
  await button.click();
  const box = await button.boundingBox();
  await bob.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await bob.page.mouse.down();
  await sleep(600);
  await bob.page.mouse.up();
  await bob.page.locator('#sos-result', { hasText: 'Not sent: hold for 1.5 s' }).waitFor({ timeout: WAIT });
  await sleep(1500);
  assert.equal(sent.length, 0, 'a tap sent an SOS');
  assert.deepEqual(await openAlerts(), []);

  // A hold: the ring fills, then one SOS with the position and the message.
  await bob.page.getByLabel('Message').fill('Followed by a car, stopping at the pharmacy');
  await bob.page.mouse.down();
  await bob.page.locator('#sos.holding').waitFor({ timeout: WAIT });
  await sleep(1800);
  await bob.page.mouse.up();
  const result = bob.page.locator('#sos-result.confirmed');
  await result.waitFor({ timeout: WAIT });
  assert.match(await result.innerText(), /SOS sent at .*dispatch has your position \(48\.86\d+, 2\.34\d+\)/);
  assert.equal(sent.length, 1, 'one hold, one SOS');
  assert.equal(sent[0].message, 'Followed by a car, stopping at the pharmacy');
  assert.ok(Math.abs(sent[0].lat - SPOTS['DRV-002'].latitude) < 1e-6, 'the phone position');
  assert.ok(sent[0].idempotency_key, 'sent with an idempotency key');
  const alerts = await openAlerts();
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0].driver_id, 'DRV-002');
  await screenshot(bob.page, 'driver-console-sos');

  // The keyboard: Space held down sends, Space let go early does not.
  await button.focus();
  await bob.page.keyboard.down(' ');
  await sleep(400);
  await bob.page.keyboard.up(' ');
  await sleep(1500);
  assert.equal(sent.length, 1, 'a short key press sent an SOS');
  await bob.page.keyboard.down(' ');
  await sleep(1800);
  await bob.page.keyboard.up(' ');
  await bob.page.locator('#sos-result.confirmed').waitFor({ timeout: WAIT });
  assert.equal(sent.length, 2);
  assert.equal((await openAlerts()).length, 2);
  assertClean(bob.page);
});
