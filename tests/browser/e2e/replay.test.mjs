// Route replay in a real browser: a driver's phone moves, the engine keeps one position per
// tracking.sample_s (1 s here), and the dashboard replays that driver's last hour on its map,
// from the keyboard: the line has every kept position, the marker walks along it, Stop clears it.
// A driver with nothing kept says so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, driver, dashboard, assertClean, sleep, WAIT, SPOTS,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  process.env.RALLYPOINT_TRACKING__SAMPLE_S = '1';
  server = await startServer('replay');
  delete process.env.RALLYPOINT_TRACKING__SAMPLE_S;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function track(id) {
  const res = await server.api('GET', `/api/v1/drivers/${id}/track`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.points;
}

test('the dashboard replays a driver\'s last hour from its kept positions', async () => {
  const alice = await driver(browser, server.base, 'DRV-001');
  // Alice drives north-east in six steps, a little more than a sample apart.
  const start = SPOTS['DRV-001'];
  for (let i = 1; i <= 6; i += 1) {
    await alice.context.setGeolocation({
      latitude: start.latitude + i * 0.002,
      longitude: start.longitude + i * 0.002,
    });
    await sleep(1300);
  }
  let kept = [];
  const deadline = Date.now() + WAIT;
  while (Date.now() < deadline) {
    kept = await track('DRV-001');
    if (kept.length >= 4) break;
    await sleep(300);
  }
  assert.ok(kept.length >= 4, `positions kept: ${JSON.stringify(kept)}`);
  const lats = kept.map((p) => p.lat);
  assert.deepEqual([...lats].sort((a, b) => a - b), lats, 'oldest first, as she drove');

  const desk = await dashboard(browser, server.base);
  const replay = desk.page.getByRole('button', { name: 'Replay the last hour of DRV-001\'s route' });
  await replay.focus();
  await desk.page.keyboard.press('Enter');
  const path = desk.page.locator('#map polyline.replay-path[data-driver="DRV-001"]');
  await path.waitFor({ timeout: WAIT });
  const drawn = (await path.getAttribute('points')).trim().split(/\s+/).length;
  assert.ok(drawn >= kept.length, `every kept position is on the line: ${drawn} < ${kept.length}`);
  await desk.page.locator('#replay-status', { hasText: /Replaying DRV-001: \d+ positions from/ })
    .waitFor({ timeout: WAIT });

  // The marker walks the line to its end.
  const marker = desk.page.locator('#map circle.replay-marker');
  const first = await marker.getAttribute('cx');
  await desk.page.locator('#replay-status', { hasText: /Replayed DRV-001/ }).waitFor({ timeout: WAIT });
  assert.equal(Number(await marker.getAttribute('data-index')), drawn - 1, 'it ends at the last position');
  assert.notEqual(await marker.getAttribute('cx'), first, 'the marker moved');

  // Stop takes it off the map; the live map stays.
  await desk.page.getByRole('button', { name: 'Stop replay' }).click();
  await path.waitFor({ state: 'detached', timeout: WAIT });
  assert.equal(await desk.page.locator('#map circle.replay-marker').count(), 0);
  assert.equal(await desk.page.locator('#map g.driver[data-driver="DRV-001"]').count(), 1);

  // A driver whose phone never sent a position has nothing to replay, and says so.
  assert.deepEqual(await track('DRV-003'), []);
  await desk.page.getByRole('button', { name: 'Replay the last hour of DRV-003\'s route' }).click();
  await desk.page.locator('#replay-status', { hasText: 'No positions of DRV-003 were kept in the last hour.' })
    .waitFor({ timeout: WAIT });
  assert.equal(await desk.page.locator('#map polyline.replay-path').count(), 0);

  assertClean(desk.page);
  assertClean(alice.page);
  await desk.context.close();
  await alice.context.close();
});
