// One emergency, seen once by everyone it concerns, whichever transport they use (SPEC 3, 4 and
// 11): a driver on Socket.IO reports a breakdown; the dispatcher on Socket.IO, in `dispatch` and
// by hand in the fleet's room too (both rooms get the publication), gets `emergency_event` once;
// a dispatcher on the native `/ws`, in `dispatch` alone, gets it once; and the drivers of the
// fleet, one per transport, once each. Every copy carries the one publication `id`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TRANSPORTS, WAIT, connected, named, receive, record, sign, startServer, until } from './harness.mjs';

let server;
before(async () => {
  server = await startServer('emergency');
});
after(async () => {
  await server?.stop();
});

const PICKUP = { lat: 48.8566, lng: 2.3522 };

TRANSPORTS.forEach(({ name, opts }, k) => {
  describe(`an emergency over ${name} and the native protocol`, () => {
    test('a report reaches the Socket.IO and the native dispatcher once each', async () => {
      const fleet = `fleet-e${k}`;
      const [alice, bob] = [`DRV-E${k}-A`, `DRV-E${k}-B`];
      const orderId = `ORD-E${k}`;
      const tokenOf = (claims) => sign(server.secret, { fleet, ...claims });

      // The dispatcher over Socket.IO, in `dispatch` and in the fleet's room.
      const desk = server.connect({ auth: { token: tokenOf({ sub: `sio-desk-${k}`, role: 'dispatcher' }) }, ...opts });
      record(desk);
      await connected(desk);
      const joined = await desk.timeout(WAIT).emitWithAck('join', { room: `fleet:${fleet}` });
      assert.equal(joined?.error, undefined, JSON.stringify(joined));
      // The dispatcher over `/ws`, in `dispatch` only.
      const nativeDesk = await server.native(tokenOf({ sub: `ws-desk-${k}`, role: 'dispatcher' }));

      // Alice on Socket.IO at the pickup with the order; Bob on `/ws`, 1 km away, free.
      const aliceSocket = server.connect({ auth: { token: tokenOf({ sub: `sub-${alice}`, role: 'driver', driver_id: alice, name: 'Alice' }) }, ...opts });
      record(aliceSocket);
      await connected(aliceSocket);
      for (const [event, payload] of [
        ['status', { status: 'online' }],
        ['location', PICKUP],
      ]) {
        const ack = await aliceSocket.timeout(WAIT).emitWithAck(event, payload);
        assert.equal(ack?.error, undefined, `${event}: ${JSON.stringify(ack)}`);
      }
      const bobWs = await server.native(tokenOf({ sub: `sub-${bob}`, role: 'driver', driver_id: bob, name: 'Bob' }));
      for (const msg of [
        { type: 'status', status: 'online' },
        { type: 'location', lat: PICKUP.lat + 0.009, lng: PICKUP.lng },
      ]) {
        const answer = await bobWs.request(msg);
        assert.equal(answer.type, 'ack', JSON.stringify(answer));
      }
      const made = await server.api('POST', '/api/v1/orders', {
        id: orderId,
        pickup: PICKUP,
        dropoff: { lat: 48.8738, lng: 2.295 },
        fleet,
        driver_id: alice,
      });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      await receive(aliceSocket, 'assignment:new', (p) => p.order_id === orderId);
      const accepted = await aliceSocket.timeout(WAIT).emitWithAck('accept', { order_id: orderId });
      assert.equal(accepted?.error, undefined, JSON.stringify(accepted));

      // Alice's breakdown, reported over Socket.IO: the ack carries the emergency_event.
      const reported = await aliceSocket.timeout(WAIT).emitWithAck('report', { order_id: orderId, kind: 'vehicle_breakdown', comment: 'engine smoke' });
      assert.equal(reported?.error, undefined, JSON.stringify(reported));
      const event = reported.event;
      assert.equal(typeof event?.event_id, 'string', JSON.stringify(reported));
      assert.equal(event.order_id, orderId);
      assert.equal(event.driver_id, alice);
      assert.equal(event.kind, 'vehicle_breakdown');

      // Then a marker in each room of the publication: what came before it is all that comes.
      for (const room of ['dispatch', `fleet:${fleet}`]) await server.publish(room, 'marker', { room });
      const sioMarked = (s) => until(() => named(s, 'marker').length === (s === desk ? 2 : 1) && s, 'the markers', () => s.events.map((e) => e.event));
      await sioMarked(desk);
      await sioMarked(aliceSocket);
      const nativeMarked = (c, n) => until(() => c.seen.filter((m) => m.type === 'marker').length === n, 'the markers', () => c.seen.map((m) => m.type));
      await nativeMarked(nativeDesk, 1);
      await nativeMarked(bobWs, 1);

      const sioCopies = (s) => named(s, 'emergency_event').filter((e) => e.args[0].event_id === event.event_id).map((e) => e.args[0]);
      const nativeCopies = (c) => c.seen.filter((m) => m.type === 'emergency_event' && m.event_id === event.event_id);
      const deskCopies = sioCopies(desk);
      assert.equal(deskCopies.length, 1, `the Socket.IO dispatcher, in two rooms of it, once: ${JSON.stringify(deskCopies)}`);
      assert.equal(nativeCopies(nativeDesk).length, 1, 'the native dispatcher once');
      assert.equal(sioCopies(aliceSocket).length, 1, 'the reporting driver on Socket.IO once');
      assert.equal(nativeCopies(bobWs).length, 1, 'the native driver once');

      // The same publication everywhere, its payload the native message without `type`.
      const copy = deskCopies[0];
      assert.equal(copy.type, undefined, JSON.stringify(copy));
      assert.equal(copy.id, nativeCopies(nativeDesk)[0].id, 'one publication id');
      assert.equal(copy.id, nativeCopies(bobWs)[0].id);
      assert.equal(sioCopies(aliceSocket)[0].id, copy.id);
      for (const key of ['event_id', 'order_id', 'driver_id', 'kind', 'risk_score', 'action_taken', 'new_driver_id']) {
        assert.deepEqual(copy[key], nativeCopies(nativeDesk)[0][key], key);
      }
      assert.ok(['dispatch', `fleet:${fleet}`].includes(copy.room), JSON.stringify(copy));
      assert.ok(Number.isInteger(copy.seq), JSON.stringify(copy));
      if (copy.action_taken === 'REASSIGNMENT_INITIATED') {
        assert.equal(copy.new_driver_id, bob);
        await bobWs.find((m) => m.type === 'order_assigned' && m.order_id === orderId, 'Bob\'s new order');
      }
    });
  });
});
