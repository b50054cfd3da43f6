// The server publish API (SPEC 11): `POST /api/v1/rooms/{room}/messages` `{type, data}` by an
// admin reaches every Socket.IO socket in the room as the event named `type` with `data` as its
// payload (and the socket's offset as the last argument, for recovery), over both transports; a
// name Socket.IO reserves is refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TRANSPORTS, connected, named, receive, record, startServer } from './harness.mjs';

let server;
before(async () => {
  server = await startServer('publish');
});
after(async () => {
  await server?.stop();
});

/** Every JSON kind, nested, and names the envelope also uses. */
const DATA = {
  zone: 'north gate',
  density: 0.82,
  count: 1204,
  open: true,
  note: null,
  type: 'inner',
  room: 'not the envelope\'s',
  seq: -1,
  gates: [{ id: 'G1', queue: [1, 2, 3] }, { id: 'G"2"', queue: [] }],
  text: 'ünïcødé ✓ \n tab\t',
};

TRANSPORTS.forEach(({ name, opts }, k) => {
  describe(`the publish API over ${name}`, () => {
    test('a broadcast arrives as the event named by its type, with its data', async () => {
      const id = `DRV-P${k}`;
      const driver = server.connect({ auth: { token: server.driver(id) }, ...opts });
      const desk = server.connect({ auth: { token: server.dispatcher(`pub-desk-${k}`) }, ...opts });
      record(driver);
      record(desk);
      await connected(driver, { upgraded: !opts.transports });
      await connected(desk, { upgraded: !opts.transports });
      assert.equal(driver.io.engine.transport.name, 'websocket');

      const answer = await server.publish(`driver:${id}`, 'crowd:alert', DATA);
      const got = await receive(driver, 'crowd:alert');
      assert.deepEqual(got.args[0], DATA);
      assert.equal(got.args.length, 2, `the payload, then the offset: ${JSON.stringify(got.args)}`);
      assert.equal(typeof got.args[1], 'string', 'the last argument is the socket\'s offset');
      assert.ok(Number.isInteger(answer.seq), JSON.stringify(answer));

      // To `dispatch`, with an array and then a bare string as the data.
      await server.publish('dispatch', 'units.moved', [1, 'two']);
      await server.publish('dispatch', 'board:note', 'shift change at six');
      const moved = await receive(desk, 'units.moved');
      assert.deepEqual(moved.args[0], [1, 'two']);
      const note = await receive(desk, 'board:note');
      assert.equal(note.args[0], 'shift change at six');
      assert.equal(typeof note.args[1], 'string');
      assert.notEqual(note.args[1], note.args[0], 'the offset follows the data');

      // To the fleet room: the driver gets it, the dispatcher (in `dispatch` only) does not.
      await server.publish('fleet:default', 'fleet:briefing', { at: 'depot' });
      await server.publish(`driver:${id}`, 'crowd:end', {});
      await receive(driver, 'fleet:briefing', (p) => p.at === 'depot');
      await receive(driver, 'crowd:end');
      assert.equal(named(driver, 'crowd:alert').length, 1, 'once');
      await server.publish('dispatch', 'board:end', {});
      await receive(desk, 'board:end');
      assert.equal(named(desk, 'fleet:briefing').length, 0, JSON.stringify(desk.events.map((e) => e.event)));
      assert.equal(named(desk, 'crowd:alert').length, 0);
    });
  });
});

test('a type Socket.IO reserves, or one of the engine\'s own, is bad_request', async () => {
  for (const type of ['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener', 'order_assigned']) {
    const answer = await server.api('POST', '/api/v1/rooms/dispatch/messages', { type, data: {} });
    assert.equal(answer.status, 400, `${type}: ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.error.code, 'bad_request', type);
  }
});
