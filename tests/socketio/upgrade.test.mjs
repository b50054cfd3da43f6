// The upgrade from polling to WebSocket as engine.io-client 6 runs it, on the wire (Engine.IO v4,
// docs/SOCKETIO.md): after `2probe`/`3probe` the client pauses polling and waits for its poll in
// flight to end before it sends `5`. Its poll may leave just before or just after the probe, so
// the server must end a pending poll with a noop `6` whenever one is pending until the upgrade
// is done (the reference checks every 100 ms), not only the poll pending at the probe; otherwise
// the client hangs on polling until something else is sent (the next ping, 25 s by default).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { WAIT, startServer } from './harness.mjs';

let server;
before(async () => {
  server = await startServer('upgrade');
});
after(async () => {
  await server?.stop();
});

/** `fetch` that gives up after WAIT, so a poll nobody ends fails the test instead of hanging. */
async function poll(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(WAIT) });
  return { status: res.status, body: await res.text() };
}

/** Opens a polling session and CONNECTs with a dispatcher's token; resolves with its sid once
 *  the CONNECT answer has been read. */
async function session() {
  const base = `${server.base}/socket.io/?EIO=4&transport=polling`;
  const open = await poll(base);
  assert.equal(open.status, 200, open.body);
  const { sid } = JSON.parse(open.body.slice(1));
  const posted = await fetch(`${base}&sid=${sid}`, {
    method: 'POST',
    headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
    body: `40${JSON.stringify({ token: server.dispatcher(`upgrade-${sid.slice(0, 4)}`) })}`,
  });
  assert.equal(posted.status, 200);
  const answer = await poll(`${base}&sid=${sid}`);
  assert.match(answer.body, /^40\{/, answer.body);
  return { sid, url: `${base}&sid=${sid}` };
}

/** A WebSocket on the session that has had its `3probe`. */
async function probed(sid) {
  const ws = new WebSocket(`${server.base.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
  const frames = [];
  ws.on('message', (d) => frames.push(String(d)));
  await new Promise((ok, fail) => {
    ws.once('open', ok);
    ws.once('error', fail);
  });
  ws.send('2probe');
  const deadline = Date.now() + WAIT;
  while (!frames.includes('3probe')) {
    assert.ok(Date.now() < deadline, `no 3probe: ${JSON.stringify(frames)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return { ws, frames };
}

test('a poll pending when the probe arrives is ended with a noop', async () => {
  const { sid, url } = await session();
  const pending = poll(url);
  await new Promise((r) => setTimeout(r, 200));
  const { ws } = await probed(sid);
  const ended = await pending;
  assert.equal(ended.status, 200);
  assert.equal(ended.body, '6');
  ws.send('5');
  ws.close();
});

test('a poll that leaves after the probe, before the upgrade, is ended with a noop too', async () => {
  const { sid, url } = await session();
  const { ws, frames } = await probed(sid);
  // engine.io-client's poll that crossed the probe: it waits for this one before sending `5`.
  const late = await poll(url);
  assert.equal(late.status, 200);
  assert.equal(late.body, '6');
  ws.send('5');
  // Upgraded: the session's packets now go over the WebSocket.
  await server.publish('dispatch', 'after:upgrade', { ok: true });
  const deadline = Date.now() + WAIT;
  while (!frames.some((f) => f.startsWith('42["after:upgrade"'))) {
    assert.ok(Date.now() < deadline, `nothing over the upgraded WebSocket: ${JSON.stringify(frames)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  ws.close();
});
