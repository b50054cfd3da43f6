// The frontends' own connection code, unchanged (SPEC 11): the crowd dashboard's
// `io(url, { auth: { token }, query: { eventId } })`, the driver service that emits
// `driver:locationUpdate` and listens for `assignment:new`, the dispatcher that listens for
// `driver:locationUpdated`, emits with an ack callback and `emitWithAck`; each over
// socket.io-client's default transports (polling, then the upgrade) and over WebSocket only.
// And a bad token, whichever way it is bad, is `connect_error` "Unauthorized".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  TRANSPORTS,
  WAIT,
  connectError,
  connected,
  named,
  receive,
  record,
  sign,
  startServer,
} from './harness.mjs';

let server;
before(async () => {
  server = await startServer('frontends');
});
after(async () => {
  await server?.stop();
});

TRANSPORTS.forEach(({ name, opts }, k) => {
  describe(`the frontends over ${name}`, () => {
    const websocketOnly = opts.transports !== undefined;

    test('the crowd dashboard: auth token and eventId, connection:status, the event room', async (t) => {
      const eventId = `FEST-${k}`;
      // An admin may watch any event (SPEC 8).
      const token = server.token({ sub: `ops-${k}`, role: 'admin' });
      // The dashboard's snippet, as written there.
      const socket = server.connect({ auth: { token }, query: { eventId }, ...opts });
      record(socket);
      await connected(socket, { upgraded: !websocketOnly });
      assert.equal(socket.io.engine.transport.name, 'websocket');
      const status = await receive(socket, 'connection:status');
      assert.equal(status.args[0].status, 'connected');
      assert.equal(status.args[0].sid, socket.id);
      assert.ok(!Number.isNaN(Date.parse(status.args[0].serverTime)), JSON.stringify(status.args[0]));
      // `eventId` joined `event:<id>`: what is published there reaches the dashboard. Rooms of
      // crowd events are SPEC 8's; until the engine has them the publish API refuses the room.
      const data = { zone: 'gate', message: 'queue building up', level: 2 };
      const published = await server.api('POST', `/api/v1/rooms/event:${eventId}/messages`, { type: 'crowd:notice', data });
      if (published.status === 400 && /room/i.test(JSON.stringify(published.body))) {
        t.todo(`event rooms (SPEC 8) are not in the engine yet: ${JSON.stringify(published.body)}`);
        return;
      }
      assert.equal(published.status, 201, JSON.stringify(published.body));
      const notice = await receive(socket, 'crowd:notice');
      assert.deepEqual(notice.args[0], data);
      assert.ok(!named(socket, 'error').length, JSON.stringify(socket.events));
      assert.equal(socket.connected, true);
    });

    test('the driver service and the dispatcher: locations, assignment:new, acks', async () => {
      const [alice, bob] = [`DRV-${k}-A`, `DRV-${k}-B`];
      const dispatcher = server.connect({ auth: { token: server.dispatcher(`desk-${k}`) }, ...opts });
      record(dispatcher);
      await connected(dispatcher, { upgraded: !websocketOnly });
      assert.equal(dispatcher.io.engine.transport.name, 'websocket');

      const drivers = [];
      for (const [id, lat, lng] of [
        [alice, 48.8566, 2.3522],
        [bob, 48.861, 2.342],
      ]) {
        const socket = server.connect({ auth: { token: server.driver(id) }, ...opts });
        record(socket);
        await connected(socket, { upgraded: !websocketOnly });
        assert.equal(socket.io.engine.transport.name, 'websocket');
        // An emit with an ack callback, as the driver service goes online.
        const ack = await new Promise((resolve) => socket.emit('status', { status: 'online' }, (a) => resolve(a)));
        assert.ok(ack && typeof ack === 'object', `the ack of status is an object: ${JSON.stringify(ack)}`);
        assert.equal(ack.error, undefined, JSON.stringify(ack));
        assert.equal(ack.type, undefined, 'an ack carries no type');
        assert.equal(ack.ref, undefined, 'an ack carries no ref');
        // The driver service's location update, as written there.
        socket.emit('driver:locationUpdate', {
          driverId: id,
          location: { lat, lng, accuracy: 8 },
          timestamp: new Date().toISOString(),
        });
        drivers.push({ id, lat, lng, socket });
      }

      // One `driver:locationUpdated` per driver, each `{driverId, location, timestamp}`.
      for (const { id, lat, lng } of drivers) {
        const e = await receive(dispatcher, 'driver:locationUpdated', (p) => p && p.driverId === id);
        const payload = e.args[0];
        assert.ok(!Array.isArray(payload), 'one event per driver, not an array');
        assert.ok(Math.abs(payload.location.lat - lat) < 1e-9, JSON.stringify(payload));
        assert.ok(Math.abs(payload.location.lng - lng) < 1e-9, JSON.stringify(payload));
        assert.ok(!Number.isNaN(Date.parse(payload.timestamp)), JSON.stringify(payload));
      }
      for (const e of dispatcher.events.filter((e) => e.event === 'driver:locationUpdated')) {
        assert.ok(!Array.isArray(e.args[0]) && typeof e.args[0].driverId === 'string', JSON.stringify(e.args));
      }

      // An order given to Alice reaches the driver service as `assignment:new` (and as ours).
      const orderId = `ORD-${k}-1`;
      const made = await server.api(
        'POST',
        '/api/v1/orders',
        { id: orderId, pickup: { lat: 48.8566, lng: 2.3522 }, dropoff: { lat: 48.8738, lng: 2.295 }, driver_id: alice },
        server.dispatcher(`desk-${k}`),
      );
      assert.equal(made.status, 201, JSON.stringify(made.body));
      const aliceSocket = drivers[0].socket;
      const assignment = await receive(aliceSocket, 'assignment:new');
      assert.equal(assignment.args[0].order_id, orderId, JSON.stringify(assignment.args[0]));
      const native = await receive(aliceSocket, 'order_assigned');
      assert.equal(native.args[0].order_id, orderId);
      assert.equal(native.args[0].driver_id, alice);
      assert.equal(native.args[0].type, undefined, 'the payload is the message without its type');
      assert.ok(Number.isInteger(native.args[0].seq), JSON.stringify(native.args[0]));
      assert.equal(typeof native.args[0].room, 'string');
      assert.ok(!named(aliceSocket, 'assignment:new').slice(1).length, 'assignment:new once');

      // `emitWithAck`: the accept's ack carries the order.
      const accepted = await aliceSocket.timeout(WAIT).emitWithAck('accept', { order_id: orderId });
      assert.equal(accepted.error, undefined, JSON.stringify(accepted));
      assert.equal(accepted.order?.id, orderId, JSON.stringify(accepted));
      assert.equal(typeof accepted.order.accepted_at, 'string', JSON.stringify(accepted));
      // And a location by our own name, with `emitWithAck`.
      const moved = await aliceSocket.timeout(WAIT).emitWithAck('location', { lat: 48.857, lng: 2.353 });
      assert.equal(moved?.error, undefined, JSON.stringify(moved));
    });

    test('every ack is an object, as the frontends read `ack.error` from it', async () => {
      const id = `DRV-${k}-C`;
      const socket = server.connect({ auth: { token: server.driver(id) }, ...opts });
      record(socket);
      await connected(socket, { upgraded: !websocketOnly });
      // The native acks of these are `{"type":"ack","ref"}` and a field or none: less those two,
      // an object (empty or not), never `null`.
      for (const [event, payload] of [
        ['status', { status: 'online' }],
        ['location', { lat: 48.85, lng: 2.35 }],
        ['driver:locationUpdate', { driverId: id, location: { lat: 48.851, lng: 2.351, accuracy: 5 }, timestamp: new Date().toISOString() }],
        ['leave', { room: `driver:${id}` }],
        ['join', { room: `driver:${id}` }],
      ]) {
        const ack = await socket.timeout(WAIT).emitWithAck(event, payload);
        assert.ok(ack !== null && typeof ack === 'object' && !Array.isArray(ack), `the ack of ${event} is an object: ${JSON.stringify(ack)}`);
        assert.equal(ack.error, undefined, `${event}: ${JSON.stringify(ack)}`);
      }
    });

    test('a missing, expired, forged or garbled token is connect_error "Unauthorized"', async () => {
      const now = Math.floor(Date.now() / 1000);
      const cases = {
        'no auth': {},
        'an empty auth': { auth: {} },
        expired: { auth: { token: sign(server.secret, { sub: 'late', role: 'dispatcher', iat: now - 7200, exp: now - 3600 }) } },
        forged: { auth: { token: sign('f'.repeat(64), { sub: 'mallory', role: 'admin' }) } },
        garbled: { auth: { token: 'not.a.jwt' } },
      };
      for (const [why, auth] of Object.entries(cases)) {
        const socket = server.connect({ ...auth, ...opts, reconnection: false });
        const err = await connectError(socket);
        assert.equal(err.message, 'Unauthorized', `${why}: ${err.message}`);
        assert.equal(socket.connected, false, why);
        socket.disconnect();
      }
    });
  });
});
