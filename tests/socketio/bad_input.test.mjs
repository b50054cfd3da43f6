// Bad input over Socket.IO (SPEC 3 and 11): an unknown event, a bad payload, a room not allowed
// and a binary attachment each get an error (as the ack, or an `error` event without one), and
// the socket stays connected and usable, over every transport (polling alone too, where binary
// travels as base64).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TRANSPORTS, WAIT, connected, receive, record, startServer } from './harness.mjs';

let server;
before(async () => {
  server = await startServer('bad_input');
});
after(async () => {
  await server?.stop();
});

/** `{error:{code,message}}` with `code` (one of SPEC 3's) and a message. */
function assertError(answer, code, what) {
  assert.equal(answer?.error?.code, code, `${what}: ${JSON.stringify(answer)}`);
  assert.equal(typeof answer.error.message, 'string', what);
  assert.ok(answer.error.message.length > 0, what);
}

[...TRANSPORTS, { name: 'polling only', opts: { transports: ['polling'] } }].forEach(({ name, opts }, k) => {
  describe(`bad input over ${name}`, () => {
    test('errors come back as the ack or an error event; the socket goes on', async () => {
      const id = `DRV-B${k}`;
      const socket = server.connect({ auth: { token: server.driver(id) }, ...opts });
      record(socket);
      const disconnects = [];
      socket.on('disconnect', (why) => disconnects.push(why));
      await connected(socket, { upgraded: opts.transports === undefined });
      const sid = socket.id;
      const ask = (...args) => socket.timeout(WAIT).emitWithAck(...args);

      assertError(await ask('no_such_event', {}), 'bad_request', 'an unknown event');
      assertError(await ask('location', { lat: 'north', lng: 2.35 }), 'bad_request', 'a bad location');
      assertError(await ask('status', { status: 'asleep' }), 'bad_request', 'an unknown status');
      assertError(await ask('location', 'not an object'), 'bad_request', 'a payload that is no object');
      assertError(await ask('join', { room: 'dispatch' }), 'forbidden', 'a driver joining dispatch');

      // Without an ack: an `error` event `{code, message}`.
      socket.emit('no_such_event', { at: 1 });
      const unknown = await receive(socket, 'error');
      assert.equal(unknown.args[0].code, 'bad_request', JSON.stringify(unknown.args));
      const errors = socket.events.length;

      // A binary attachment: refused, without a crash, with or without an ack.
      socket.emit('location', Buffer.from([1, 2, 3]));
      const binary = await receive(socket, 'error', () => true, errors);
      assert.equal(typeof binary.args[0].code, 'string', JSON.stringify(binary.args));
      assert.equal(typeof binary.args[0].message, 'string', JSON.stringify(binary.args));
      const refused = await ask('location', { lat: 48.85, lng: 2.35, blob: Buffer.from([4, 5, 6]) });
      assert.equal(typeof refused?.error?.code, 'string', `a binary emit's ack: ${JSON.stringify(refused)}`);
      assert.equal(typeof refused.error.message, 'string');

      // Still the same connected socket, and it works.
      assert.equal(socket.connected, true);
      assert.equal(socket.id, sid);
      const online = await ask('status', { status: 'online' });
      assert.equal(online?.error, undefined, JSON.stringify(online));
      const moved = await ask('location', { lat: 48.85, lng: 2.35 });
      assert.equal(moved?.error, undefined, JSON.stringify(moved));
      await server.publish(`driver:${id}`, 'after:errors', { ok: true });
      await receive(socket, 'after:errors');
      assert.deepEqual(disconnects, [], 'no disconnect');
      assert.equal(socket.id, sid);
    });
  });
});
