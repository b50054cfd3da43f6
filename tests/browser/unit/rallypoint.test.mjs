// Unit tests of web/rallypoint.js on node's own test runner: a fake socket, a fake clock and a
// fake window drive the client through drops, backoff, resume, acks and timeouts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RallypointClient, Positions, SeenIds, backoffDelay, tokenExpiry, State, STATE_CHANGING,
} from '../../../web/rallypoint.js';

/** Virtual time: timers run only when `advance` passes them. */
class Clock {
  constructor() {
    this.t = 1_000_000;
    this.timers = new Map();
    this.next = 1;
  }

  now = () => this.t;

  setTimeout = (fn, ms) => {
    const id = this.next++;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  };

  clearTimeout = (id) => {
    this.timers.delete(id);
  };

  /** Runs every timer due within `ms`, in time order. */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let due = null;
      for (const [id, tm] of this.timers) if (tm.at <= end && (!due || tm.at < due[1].at)) due = [id, tm];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      await due[1].fn();
      await flush();
    }
    this.t = end;
  }
}

const flush = () => new Promise((r) => setImmediate(r));

/** A WebSocket the test plays the server of. */
function socketClass() {
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      sockets.push(this);
    }

    send(text) {
      if (this.readyState !== 1) throw new Error('not open');
      this.sent.push(JSON.parse(text));
    }

    close(code) {
      this.closedWith = code ?? 1000;
      this.readyState = 3;
    }

    // The server's side.
    accept(welcome = {}) {
      this.readyState = 1;
      this.receive({
        type: 'welcome', session_id: 1, sub: 'drv-1', role: 'driver', driver_id: 'DRV-1', fleet: 'default',
        heartbeat_ms: 5000, server_time: new Date().toISOString(),
        rooms: { 'fleet:default': 0, 'driver:DRV-1': 0 }, status: 'offline', orders: [], ...welcome,
      });
    }

    receive(msg) {
      this.onmessage?.({ data: JSON.stringify(msg) });
    }

    drop(code = 1006) {
      this.readyState = 3;
      this.onclose?.({ code, reason: '' });
    }

    query() {
      return new URL(this.url).searchParams;
    }
  }
  return { FakeSocket, sockets };
}

/** A window with online/offline events. */
class FakeWindow {
  constructor() {
    this.listeners = { online: new Set(), offline: new Set() };
    this.navigator = { onLine: true };
  }

  addEventListener(type, fn) {
    this.listeners[type]?.add(fn);
  }

  removeEventListener(type, fn) {
    this.listeners[type]?.delete(fn);
  }

  fire(type) {
    this.navigator.onLine = type === 'online';
    for (const fn of this.listeners[type]) fn();
  }
}

function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.sig`;
}

function client(extra = {}) {
  const clock = new Clock();
  const { FakeSocket, sockets } = socketClass();
  const win = new FakeWindow();
  const fetches = [];
  const rp = new RallypointClient({
    url: 'http://127.0.0.1:9',
    token: jwt({ sub: 'drv-1', exp: Math.floor(clock.t / 1000) + 3600 }),
    WebSocket: FakeSocket,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random: () => 0.5,
    window: win,
    pollMs: 0,
    fetch: async (url, init) => {
      fetches.push({ url, init });
      throw new Error('no server');
    },
    ...extra,
  });
  const states = [];
  rp.on('state', (s) => states.push(s));
  return { rp, clock, sockets, win, states, fetches };
}

test('backoff grows exponentially with jitter and is capped', () => {
  const at = (n, r) => backoffDelay(n, { baseMs: 500, maxMs: 15000, random: () => r });
  assert.equal(at(0, 0), 250);
  assert.equal(at(0, 1), 500);
  assert.equal(at(1, 0), 500);
  assert.equal(at(3, 1), 4000);
  assert.equal(at(10, 1), 15000, 'capped at maxMs');
  assert.equal(at(10, 0), 7500, 'half of the cap at least');
  assert.equal(at(1000, 1), 15000, 'huge attempts do not overflow');
  for (let n = 0; n < 8; n++) {
    const d = backoffDelay(n);
    const step = Math.min(15000, 500 * 2 ** n);
    assert.ok(d >= step / 2 && d <= step, `attempt ${n}: ${d} within [${step / 2}, ${step}]`);
  }
});

test('reconnects after a drop with growing waits, and reports the state', async () => {
  const { rp, clock, sockets, states } = client();
  rp.connect();
  assert.equal(sockets.length, 1);
  sockets[0].accept();
  assert.equal(rp.state, State.CONNECTED);

  sockets[0].drop();
  assert.equal(rp.state, State.RECONNECTING);
  // random() = 0.5: attempt 0 waits 375 ms (between 250 and 500).
  await clock.advance(374);
  assert.equal(sockets.length, 1, 'no new socket before the backoff');
  await clock.advance(1);
  assert.equal(sockets.length, 2, 'a new socket after the backoff');

  // Failed attempts wait longer each time: 750, 1500 ms...
  sockets[1].drop();
  await clock.advance(749);
  assert.equal(sockets.length, 2);
  await clock.advance(1);
  assert.equal(sockets.length, 3);
  sockets[2].drop();
  await clock.advance(1500);
  assert.equal(sockets.length, 4);
  sockets[3].drop();
  assert.equal(rp.state, State.OFFLINE, 'offline after `offlineAfter` (3) failed attempts');

  await clock.advance(3000);
  assert.equal(sockets.length, 5);
  sockets[4].accept();
  assert.equal(rp.state, State.CONNECTED);
  assert.deepEqual(states, ['connected', 'reconnecting', 'offline', 'connected']);

  // A welcome resets the backoff: the next drop waits the first step again.
  sockets[4].drop();
  await clock.advance(375);
  assert.equal(sockets.length, 6);
  rp.close();
});

test('the browser going offline drops the socket at once; coming online reconnects at once', async () => {
  const { rp, clock, sockets, win } = client();
  rp.connect();
  sockets[0].accept();
  win.fire('offline');
  assert.equal(rp.state, State.OFFLINE);
  assert.equal(sockets[0].closedWith, 1000, 'the socket was closed');
  await clock.advance(60_000);
  assert.equal(sockets.length, 1, 'no attempts while the browser is offline');
  win.fire('online');
  assert.equal(rp.state, State.RECONNECTING);
  assert.equal(sockets.length, 2, 'reconnected without waiting');
  sockets[1].accept();
  assert.equal(rp.state, State.CONNECTED);
  rp.close();
});

test('resume bookkeeping: positions, duplicates dropped, since on the reconnect URL', async () => {
  const { rp, clock, sockets } = client();
  const got = [];
  rp.on('emergency_event', (m) => got.push(m.seq));
  rp.connect();
  assert.equal(sockets[0].query().get('since'), null, 'a first connect resumes nothing');
  sockets[0].accept({ rooms: { 'fleet:default': 5, 'driver:DRV-1': 2 } });
  assert.equal(rp.lastSeq('fleet:default'), 5, 'the welcome gives the starting positions');
  for (const seq of [6, 7, 7, 5]) sockets[0].receive({ type: 'emergency_event', room: 'fleet:default', seq, id: `e${seq}` });
  assert.deepEqual(got, [6, 7], 'a seq already seen is not delivered twice');
  sockets[0].drop();
  await clock.advance(375);
  assert.equal(sockets[1].query().get('since'), 'fleet:default:7,driver:DRV-1:2');

  // The replay overlaps nothing: 8 arrives once; `joined` recovered keeps the position.
  sockets[1].accept({ rooms: { 'fleet:default': 9, 'driver:DRV-1': 2 } });
  sockets[1].receive({ type: 'joined', room: 'fleet:default', seq: 9, recovered: true });
  assert.equal(rp.lastSeq('fleet:default'), 7, 'a recovered join does not skip the replay');
  sockets[1].receive({ type: 'emergency_event', room: 'fleet:default', seq: 8, id: 'e8' });
  sockets[1].receive({ type: 'emergency_event', room: 'fleet:default', seq: 9, id: 'e9' });
  assert.deepEqual(got, [6, 7, 8, 9]);
  rp.close();
});

test('copies of one publication in two rooms are delivered once, and advance both rooms', async () => {
  const { rp, clock, sockets } = client();
  const got = [];
  rp.on('emergency_event', (m) => got.push(`${m.room}:${m.seq}`));
  rp.connect();
  sockets[0].accept({ role: 'dispatcher', rooms: { dispatch: 10 } });
  rp.join('fleet:default').catch(() => {});
  sockets[0].receive({ type: 'joined', room: 'fleet:default', seq: 4 });
  // One publication, two copies (one id), in either order; then one to `dispatch` alone.
  sockets[0].receive({ type: 'emergency_event', room: 'fleet:default', seq: 5, id: 'p1' });
  sockets[0].receive({ type: 'emergency_event', room: 'dispatch', seq: 11, id: 'p1' });
  sockets[0].receive({ type: 'emergency_event', room: 'dispatch', seq: 12, id: 'p2' });
  sockets[0].receive({ type: 'emergency_event', room: 'fleet:default', seq: 6, id: 'p2' });
  assert.deepEqual(got, ['fleet:default:5', 'dispatch:12'], 'each publication once');
  assert.equal(rp.lastSeq('dispatch'), 12, 'the dropped copy still advanced its room');
  assert.equal(rp.lastSeq('fleet:default'), 6);

  // The resume asks each room from its own position; the replayed copies are not shown again.
  sockets[0].drop();
  await clock.advance(375);
  assert.equal(sockets[1].query().get('since'), 'dispatch:12');
  sockets[1].accept({ role: 'dispatcher', rooms: { dispatch: 13 } });
  const join = sockets[1].sent.find((m) => m.type === 'join');
  assert.deepEqual({ room: join.room, since: join.since }, { room: 'fleet:default', since: 6 });
  sockets[1].receive({ type: 'emergency_event', room: 'dispatch', seq: 12, id: 'p2' });
  sockets[1].receive({ type: 'emergency_event', room: 'dispatch', seq: 13, id: 'p3' });
  sockets[1].receive({ type: 'emergency_event', room: 'fleet:default', seq: 7, id: 'p3' });
  assert.deepEqual(got, ['fleet:default:5', 'dispatch:12', 'dispatch:13']);
  assert.equal(rp.lastSeq('fleet:default'), 7);
  rp.close();
});

test('SeenIds drops repeats of sequenced messages only, and forgets the oldest past its limit', () => {
  const seen = new SeenIds(2);
  assert.equal(seen.repeat({ id: 'a', seq: 1 }), false);
  assert.equal(seen.repeat({ id: 'a', seq: 9 }), true);
  assert.equal(seen.repeat({ id: 'x' }), false, 'ephemeral messages are never repeats');
  assert.equal(seen.repeat({ id: 'x' }), false);
  seen.repeat({ id: 'b', seq: 2 });
  seen.repeat({ id: 'c', seq: 3 });
  assert.equal(seen.repeat({ id: 'a', seq: 4 }), false, 'the oldest id was forgotten');
  assert.equal(seen.repeat({ id: 'c', seq: 5 }), true);
});

test('a room the server takes the session out of is forgotten, and not joined again', async () => {
  const { rp, clock, sockets } = client();
  const left = [];
  rp.on('left', (m) => left.push(`${m.room} ${m.reason}`));
  rp.connect();
  sockets[0].accept();
  rp.join('order:ORD-1');
  const join = sockets[0].sent.find((m) => m.type === 'join');
  sockets[0].receive({ type: 'joined', room: 'order:ORD-1', seq: 3 });
  sockets[0].receive({ type: 'ack', ref: join.ref, room: 'order:ORD-1', seq: 3 });
  sockets[0].receive({ type: 'left', room: 'order:ORD-1', reason: 'unassigned' });
  assert.deepEqual(left, ['order:ORD-1 unassigned']);
  assert.equal(rp.lastSeq('order:ORD-1'), undefined);
  assert.deepEqual(rp.rooms(), ['fleet:default', 'driver:DRV-1']);
  sockets[0].drop();
  await clock.advance(375);
  sockets[1].accept();
  assert.equal(sockets[1].sent.find((m) => m.type === 'join'), undefined);
  rp.close();
});

test('a resume the server cannot complete resets the position and asks for a reload', async () => {
  const { rp, clock, sockets } = client();
  const resyncs = [];
  rp.on('resync', (r) => resyncs.push(r.room));
  rp.connect();
  sockets[0].accept({ rooms: { 'fleet:default': 5, 'driver:DRV-1': 0 } });
  sockets[0].drop();
  await clock.advance(375);
  sockets[1].accept({ rooms: { 'fleet:default': 2000, 'driver:DRV-1': 0 } });
  sockets[1].receive({ type: 'joined', room: 'fleet:default', seq: 2000, recovered: false });
  sockets[1].receive({ type: 'resync', room: 'fleet:default' });
  assert.equal(rp.lastSeq('fleet:default'), 2000);
  assert.deepEqual(resyncs, ['fleet:default']);
  rp.close();
});

test('rooms joined by hand are joined again with since after a reconnect', async () => {
  const { rp, clock, sockets } = client();
  rp.connect();
  sockets[0].accept();
  rp.join('order:ORD-1');
  const join = sockets[0].sent.find((m) => m.type === 'join');
  assert.equal(join.room, 'order:ORD-1');
  assert.equal(join.since, undefined);
  sockets[0].receive({ type: 'ack', ref: join.ref, room: 'order:ORD-1' });
  sockets[0].receive({ type: 'joined', room: 'order:ORD-1', seq: 3 });
  sockets[0].receive({ type: 'order_updated', room: 'order:ORD-1', seq: 4, id: 'x' });
  sockets[0].drop();
  await clock.advance(375);
  sockets[1].accept();
  const again = sockets[1].sent.find((m) => m.type === 'join');
  assert.deepEqual({ room: again.room, since: again.since }, { room: 'order:ORD-1', since: 4 });
  rp.close();
});

test('a room joined from the welcome handler is joined once, and resumed once after a reconnect', async () => {
  const { rp, clock, sockets } = client();
  rp.on('welcome', () => {
    if (!rp.rooms().includes('event:E1')) rp.join('event:E1').catch(() => {});
  });
  rp.connect();
  sockets[0].accept();
  const joins = (s) => s.sent.filter((m) => m.type === 'join');
  assert.equal(joins(sockets[0]).length, 1);
  assert.ok(joins(sockets[0])[0].ref, 'the join sent is the one whose answer the page awaits');
  sockets[0].receive({ type: 'ack', ref: joins(sockets[0])[0].ref, room: 'event:E1' });
  sockets[0].receive({ type: 'joined', room: 'event:E1', seq: 2 });
  sockets[0].drop();
  await clock.advance(375);
  sockets[1].accept();
  assert.deepEqual(joins(sockets[1]).map((m) => [m.room, m.since]), [['event:E1', 2]]);
  rp.close();
});

test('send: resolved by the ack, rejected by the error, with a ref each', async () => {
  const { rp, sockets } = client();
  rp.connect();
  sockets[0].accept();
  const ok = rp.send({ type: 'status', status: 'online' });
  const bad = rp.send({ type: 'accept', order_id: 'nope' });
  const [s1, s2] = sockets[0].sent;
  assert.notEqual(s1.ref, s2.ref);
  assert.ok(s1.ref.length <= 64 && s1.idempotency_key.length <= 64);
  sockets[0].receive({ type: 'error', ref: s2.ref, code: 'not_found', message: 'order nope does not exist' });
  sockets[0].receive({ type: 'ack', ref: s1.ref, status: 'online' });
  assert.equal((await ok).status, 'online');
  await assert.rejects(bad, (e) => e.code === 'not_found' && /does not exist/.test(e.message));
  rp.close();
});

test('send: a message without an answer times out', async () => {
  const { rp, clock, sockets } = client({ ackTimeoutMs: 2000 });
  rp.connect();
  sockets[0].accept();
  const p = rp.send({ type: 'ping' });
  let settled = false;
  p.catch(() => {}).finally(() => {
    settled = true;
  });
  await clock.advance(1999);
  assert.equal(settled, false);
  await clock.advance(1);
  await assert.rejects(p, (e) => e.code === 'timeout');
  // A late ack for it is harmless.
  sockets[0].receive({ type: 'ack', ref: sockets[0].sent[0].ref });
  rp.close();
});

test('messages sent while down are queued, with idempotency keys, and sent once back', async () => {
  const { rp, clock, sockets, win } = client({ ackTimeoutMs: 1000 });
  rp.connect();
  sockets[0].accept();
  win.fire('offline');
  const p = rp.send({ type: 'report', order_id: 'ORD-1', kind: 'accident' });
  await clock.advance(5000);
  let settled = false;
  p.finally(() => {
    settled = true;
  });
  await flush();
  assert.equal(settled, false, 'no timeout while the message waits for a socket');
  win.fire('online');
  assert.equal(sockets[1].sent.length, 0, 'nothing is written before the welcome');
  sockets[1].accept();
  const [report] = sockets[1].sent;
  assert.equal(report.type, 'report');
  assert.ok(report.idempotency_key, 'a state-changing message carries an idempotency key');
  sockets[1].receive({ type: 'ack', ref: report.ref, event: { event_id: 'ev1' } });
  assert.equal((await p).event.event_id, 'ev1');
  assert.deepEqual(STATE_CHANGING, ['status', 'accept', 'decline', 'order_status', 'report', 'sos', 'complete_emergency']);
  rp.close();
});

test('a message written but not answered before a drop is sent again with the same key', async () => {
  const { rp, clock, sockets } = client();
  rp.connect();
  sockets[0].accept();
  const p = rp.send({ type: 'report', order_id: 'ORD-1', kind: 'accident' });
  const first = sockets[0].sent[0];
  sockets[0].drop();
  await clock.advance(375);
  sockets[1].accept();
  const second = sockets[1].sent.find((m) => m.type === 'report');
  assert.equal(second.idempotency_key, first.idempotency_key, 'the same key: the server does it once');
  assert.equal(second.ref, first.ref);
  sockets[1].receive({ type: 'ack', ref: second.ref, event: { event_id: 'ev1' } });
  assert.equal((await p).event.event_id, 'ev1');
  rp.close();
});

test('a resend refused because its first copy still runs is asked again, and gets the answer', async () => {
  const { rp, clock, sockets } = client();
  rp.connect();
  sockets[0].accept();
  const p = rp.send({ type: 'report', order_id: 'ORD-1', kind: 'accident' });
  sockets[0].drop();
  await clock.advance(375);
  sockets[1].accept();
  const resent = sockets[1].sent.find((m) => m.type === 'report');
  sockets[1].receive({
    type: 'error', ref: resent.ref, code: 'conflict',
    message: 'a request with this idempotency_key is still running; retry shortly',
  });
  await clock.advance(250);
  const again = sockets[1].sent.filter((m) => m.type === 'report');
  assert.equal(again.length, 2, 'asked again');
  assert.equal(again[1].idempotency_key, resent.idempotency_key);
  sockets[1].receive({ type: 'ack', ref: resent.ref, event: { event_id: 'ev1' } });
  assert.equal((await p).event.event_id, 'ev1');
  // Any other conflict is the answer.
  const q = rp.send({ type: 'accept', order_id: 'ORD-2' });
  const accept = sockets[1].sent.find((m) => m.type === 'accept');
  sockets[1].receive({ type: 'error', ref: accept.ref, code: 'conflict', message: 'order ORD-2 is not offered to you' });
  await assert.rejects(q, (e) => e.code === 'conflict');
  rp.close();
});

test('close rejects what is pending', async () => {
  const { rp, sockets } = client();
  rp.connect();
  sockets[0].accept();
  const p = rp.send({ type: 'ping' });
  rp.close();
  await assert.rejects(p, (e) => e.code === 'closed');
  assert.equal(rp.state, State.OFFLINE);
});

test('a silent server counts as a drop', async () => {
  const { rp, clock, sockets } = client();
  rp.connect();
  sockets[0].accept({ heartbeat_ms: 1000 });
  await clock.advance(1000);
  assert.ok(sockets[0].sent.some((m) => m.type === 'ping'), 'an application ping every heartbeat');
  sockets[0].receive({ type: 'pong' });
  await clock.advance(3000);
  assert.equal(rp.state, State.RECONNECTING, 'silent for 2.5 heartbeats: reconnecting');
  assert.equal(sockets[0].closedWith, 1000);
  rp.close();
});

test('the token is refreshed before it expires and sent with refresh', async () => {
  const clock0 = new Clock();
  const exp = Math.floor(clock0.t / 1000) + 120;
  const fresh = jwt({ sub: 'drv-1', exp: exp + 3600 });
  let asked = 0;
  const { rp, clock, sockets } = client({
    token: jwt({ sub: 'drv-1', exp }),
    refreshMarginS: 60,
    getToken: async () => {
      asked += 1;
      return fresh;
    },
  });
  rp.connect();
  sockets[0].accept({ heartbeat_ms: 600_000 });
  await clock.advance(59_000);
  assert.equal(asked, 0);
  await clock.advance(2_000);
  assert.equal(asked, 1, 'asked for a token 60 s before exp');
  const refresh = sockets[0].sent.find((m) => m.type === 'refresh');
  assert.equal(refresh.token, fresh);
  sockets[0].drop();
  await clock.advance(375);
  assert.equal(sockets[1].query().get('token'), fresh, 'the new token is used to reconnect');
  assert.equal(tokenExpiry(fresh), exp + 3600);
  assert.equal(tokenExpiry('garbage'), null);
  rp.close();
});

test('a 4001 close gets a new token before reconnecting', async () => {
  const fresh = jwt({ sub: 'drv-1', exp: 9_999_999_999 });
  const { rp, clock, sockets } = client({ getToken: async () => fresh });
  rp.connect();
  sockets[0].accept();
  sockets[0].drop(4001);
  await flush();
  await clock.advance(375);
  assert.equal(sockets[1].query().get('token'), fresh);
  rp.close();
});

test('while the socket is down, rooms are polled over REST and new events delivered once', async () => {
  const pages = {
    'fleet:default': { room: 'fleet:default', seq: 7, recovered: true, events: [
      { type: 'emergency_event', room: 'fleet:default', seq: 6, id: 'a' },
      { type: 'emergency_event', room: 'fleet:default', seq: 7, id: 'b' },
    ] },
    'driver:DRV-1': { room: 'driver:DRV-1', seq: 0, recovered: true, events: [] },
  };
  const urls = [];
  const { rp, clock, sockets } = client({
    pollMs: 1000,
    fetch: async (url, init) => {
      urls.push([url, init.headers.Authorization]);
      const room = decodeURIComponent(url.split('/rooms/')[1].split('/events')[0]);
      return { ok: true, status: 200, json: async () => pages[room] };
    },
  });
  const got = [];
  rp.on('emergency_event', (m) => got.push(m.id));
  rp.connect();
  sockets[0].accept({ rooms: { 'fleet:default': 5, 'driver:DRV-1': 0 } });
  await clock.advance(1000);
  assert.equal(urls.length, 0, 'no polling while connected');
  sockets[0].drop();
  // The reconnect attempts fail; the poll runs meanwhile.
  await clock.advance(1000);
  assert.ok(urls.some(([u]) => u.endsWith('/api/v1/rooms/fleet%3Adefault/events?since=5')), JSON.stringify(urls));
  assert.ok(urls.every(([, auth]) => auth.startsWith('Bearer ')));
  assert.deepEqual(got, ['a', 'b']);
  await clock.advance(1000);
  assert.deepEqual(got, ['a', 'b'], 'polled again: nothing twice');
  assert.ok(urls.some(([u]) => u.endsWith('events?since=7')), 'the next poll starts after what was delivered');
  rp.close();
});

test('Positions.sinceParam lists only rooms with a position', () => {
  const p = new Positions();
  p.set('a', 1);
  p.seed('a', 9);
  p.seed('b', 2);
  assert.equal(p.sinceParam(['a', 'b', 'c']), 'a:1,b:2');
  assert.equal(p.accept({ room: 'a', seq: 1 }), false);
  assert.equal(p.accept({ room: 'a', seq: 2 }), true);
  assert.equal(p.accept({ type: 'pong' }), true);
});
