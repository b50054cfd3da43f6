// rallypoint.js: the Rallypoint browser client. A dependency-free ES module served by the engine at
// /client/rallypoint.js and documented in docs/CLIENT.md.
//
//   import { RallypointClient } from '/client/rallypoint.js';
//   const rp = new RallypointClient({ token, getToken: async () => freshToken() });
//   rp.on('emergency_event', (ev) => show(ev));
//   rp.on('state', (s) => dot.dataset.state = s);      // connected | reconnecting | offline
//   rp.connect();
//   const ack = await rp.send({ type: 'report', order_id: 'ORD-1', kind: 'accident' });
//
// What it does for the page: one `ref` per message and a promise settled by its `ack` or `error`
// (or a timeout); reconnection with exponential backoff and jitter; resume of every joined room
// from the last `seq` seen (and a `resync` event when the server cannot replay everything), one
// delivery per publication (a copy repeated in another room advances that room, and is dropped);
// messages sent while the socket is down are queued and sent once it is back, state-changing ones
// with an idempotency key so a resend is never done twice; REST polling of the rooms' history
// while the socket is down; token refresh before expiry.

/** Connection states shown to people. */
export const State = Object.freeze({
  CONNECTED: 'connected',
  RECONNECTING: 'reconnecting',
  OFFLINE: 'offline',
});

/** Client messages that change state: they carry an idempotency key. */
export const STATE_CHANGING = Object.freeze(['status', 'accept', 'decline', 'order_status', 'report', 'sos', 'complete_emergency']);

/** Close codes after which reconnecting is pointless until something changes. */
const FATAL_CLOSES = new Set([1002, 1009]);

/** An `error` answer, a timeout, or a closed client. `code` is the protocol's error code, or
 *  `timeout` / `closed`. */
export class RallypointError extends Error {
  constructor(code, message, ref) {
    super(message);
    this.name = 'RallypointError';
    this.code = code;
    this.ref = ref;
  }
}

/**
 * The wait before reconnect attempt `attempt` (0-based): exponential, capped, with "equal jitter"
 * (half of the step fixed, half random) so a fleet of clients dropped at once does not come back
 * at once.
 */
export function backoffDelay(attempt, { baseMs = 500, maxMs = 15000, random = Math.random } = {}) {
  const step = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + random() * (step / 2));
}

/** The `exp` claim of a JWT, in seconds since the epoch, or null when it cannot be read. */
export function tokenExpiry(token) {
  try {
    const part = String(token).split('.')[1];
    if (!part) return null;
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
    const json = typeof atob === 'function'
      ? atob(padded)
      : Buffer.from(padded, 'base64').toString('binary');
    const exp = JSON.parse(json).exp;
    return typeof exp === 'number' ? exp : null;
  } catch {
    return null;
  }
}

/**
 * Resume bookkeeping: the last `seq` seen per room. A message whose seq is not above the room's
 * last one was already delivered (a replay overlapping live traffic, or a poll overlapping a
 * resume) and is dropped.
 */
export class Positions {
  constructor() {
    this.seqs = new Map();
  }

  get(room) {
    return this.seqs.get(room);
  }

  /** Sets the position outright (welcome, resync). */
  set(room, seq) {
    this.seqs.set(room, seq);
  }

  /** Records the position unless one is already known. */
  seed(room, seq) {
    if (!this.seqs.has(room)) this.seqs.set(room, seq);
  }

  forget(room) {
    this.seqs.delete(room);
  }

  /** True when `msg` is new (or carries no seq), recording its seq. */
  accept(msg) {
    if (typeof msg.room !== 'string' || typeof msg.seq !== 'number') return true;
    const last = this.seqs.get(msg.room);
    if (last !== undefined && msg.seq <= last) return false;
    this.seqs.set(msg.room, msg.seq);
    return true;
  }

  /** The `since` query value for `rooms`: `ROOM:SEQ,ROOM:SEQ` of those with a position. */
  sinceParam(rooms) {
    return rooms
      .filter((r) => this.seqs.has(r))
      .map((r) => `${r}:${this.seqs.get(r)}`)
      .join(',');
  }
}

/**
 * Publications already delivered, by `id`. One publication sent to several rooms the session is in
 * arrives once per room, every copy with the same `id`: each copy advances its room's position,
 * and only the first is delivered. Bounded: past `limit` the oldest ids are forgotten (the copies
 * of one publication arrive close together).
 */
export class SeenIds {
  constructor(limit = 4096) {
    this.limit = limit;
    this.ids = new Set();
  }

  /** True when `msg` (a sequenced room message) repeats an id already delivered; records it. */
  repeat(msg) {
    if (typeof msg.id !== 'string' || typeof msg.seq !== 'number') return false;
    if (this.ids.has(msg.id)) return true;
    this.ids.add(msg.id);
    if (this.ids.size > this.limit) this.ids.delete(this.ids.values().next().value);
    return false;
  }
}

let instances = 0;

function randomKey(random) {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  let s = '';
  for (let i = 0; i < 32; i++) s += Math.floor(random() * 16).toString(16);
  return s;
}

/**
 * A connection to Rallypoint that survives real networks.
 *
 * Options (all but `token` optional):
 * - `token`: the JWT to connect with.
 * - `url`: the server's base URL (default: the page's origin), `http(s)://` or `ws(s)://`.
 * - `getToken`: `async () => token`, called before the token expires (and after a 4001); the
 *   new token is sent with `refresh` and used for later connections.
 * - `ackTimeoutMs` (10000): how long a sent message waits for its `ack`/`error`.
 * - `backoff`: `{ baseMs: 500, maxMs: 15000 }`.
 * - `pollMs` (5000): how often rooms are polled over REST while the socket is down (0: never).
 * - `refreshMarginS` (60): how long before `exp` the token is refreshed.
 * - `offlineAfter` (3): failed attempts after which the state is `offline` rather than
 *   `reconnecting` (the browser saying it is offline makes it `offline` at once).
 * - For tests: `WebSocket`, `fetch`, `setTimeout`, `clearTimeout`, `random`, `now`, `window`.
 */
export class RallypointClient {
  constructor(options = {}) {
    const g = globalThis;
    this.opts = {
      ackTimeoutMs: 10000,
      pollMs: 5000,
      refreshMarginS: 60,
      offlineAfter: 3,
      ...options,
      backoff: { baseMs: 500, maxMs: 15000, ...(options.backoff || {}) },
    };
    this.token = options.token;
    this.WebSocket = options.WebSocket || g.WebSocket;
    this.fetch = options.fetch || (g.fetch ? g.fetch.bind(g) : null);
    this.setTimeout = options.setTimeout || g.setTimeout.bind(g);
    this.clearTimeout = options.clearTimeout || g.clearTimeout.bind(g);
    this.random = options.random || Math.random;
    this.now = options.now || Date.now;
    this.window = options.window !== undefined ? options.window : (g.addEventListener ? g : null);
    const base = options.url || (g.location ? g.location.origin : 'http://127.0.0.1:8000');
    this.httpBase = base.replace(/^ws/, 'http').replace(/\/+$/, '');
    this.wsBase = this.httpBase.replace(/^http/, 'ws');

    this.state = State.RECONNECTING;
    this.handlers = new Map();
    this.positions = new Positions();
    this.seen = new SeenIds();
    /** Default rooms from the last `welcome`, resumed through the connect URL. */
    this.defaultRooms = [];
    /** Rooms joined with `join()`, resumed with `join` + `since`. */
    this.extraRooms = new Set();
    /** ref -> {msg, resolve, reject, timer, written} of messages not yet answered. */
    this.pending = new Map();
    /** refs waiting for a socket, in order. */
    this.outbox = [];
    this.session = null;
    this.ws = null;
    this.attempt = 0;
    this.closed = true;
    this.timers = { reconnect: null, heartbeat: null, poll: null, refresh: null };
    this.lastHeard = 0;
    this.refCounter = 0;
    this.refPrefix = `c${++instances}${Math.floor(this.random() * 1e6).toString(36)}`;
    this.browserOffline = false;
    this.onBrowserOffline = () => this.goneOffline();
    this.onBrowserOnline = () => this.backOnline();
  }

  /** Calls `handler(msg)` for each server message of `type` (`'*'`: every one), or on `state`
   *  (`handler(state)`), `resync` (`handler({room})`) and `welcome`. Returns an unsubscribe. */
  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(handler);
    return () => this.handlers.get(type).delete(handler);
  }

  emit(type, value) {
    for (const h of this.handlers.get(type) || []) {
      try {
        h(value);
      } catch (e) {
        console.error(`rallypoint: a '${type}' handler threw`, e);
      }
    }
  }

  /** Opens the connection; it is kept open (reconnecting as needed) until `close()`. */
  connect() {
    if (!this.closed) return this;
    this.closed = false;
    if (this.window) {
      this.window.addEventListener('offline', this.onBrowserOffline);
      this.window.addEventListener('online', this.onBrowserOnline);
      const nav = this.window.navigator;
      this.browserOffline = !!(nav && nav.onLine === false);
    }
    this.scheduleRefresh();
    if (this.browserOffline) this.setState(State.OFFLINE);
    else this.open();
    this.schedulePoll();
    return this;
  }

  /** Closes for good: pending messages are rejected with `closed`. */
  close() {
    this.closed = true;
    for (const k of Object.keys(this.timers)) this.clearTimer(k);
    if (this.window) {
      this.window.removeEventListener('offline', this.onBrowserOffline);
      this.window.removeEventListener('online', this.onBrowserOnline);
    }
    this.dropSocket(1000);
    for (const [ref, p] of this.pending) {
      if (p.timer) this.clearTimeout(p.timer);
      p.reject(new RallypointError('closed', 'the client was closed', ref));
    }
    this.pending.clear();
    this.outbox = [];
    this.setState(State.OFFLINE);
  }

  /**
   * Sends `msg` with a new `ref` (and, for a state-changing message, an `idempotency_key` unless
   * it has one). Resolves with the `ack`, rejects with a RallypointError on `error` or timeout.
   * While the socket is down the message waits in a queue; the timeout runs only once it is
   * written, and a message written but not answered before a drop is written again on the next
   * connection (its idempotency key makes that safe).
   */
  send(msg) {
    const m = { ...msg };
    m.ref = `${this.refPrefix}-${++this.refCounter}`;
    if (STATE_CHANGING.includes(m.type) && !m.idempotency_key) {
      m.idempotency_key = randomKey(this.random);
    }
    return new Promise((resolve, reject) => {
      this.pending.set(m.ref, { msg: m, resolve, reject, timer: null, written: false });
      if (this.isOpen()) this.write(m.ref);
      else this.outbox.push(m.ref);
    });
  }

  /** Joins `room` (resuming from the last seq seen when there is one) and keeps it joined
   *  across reconnects. */
  join(room) {
    this.extraRooms.add(room);
    const since = this.positions.get(room);
    return this.send(since === undefined ? { type: 'join', room } : { type: 'join', room, since });
  }

  leave(room) {
    this.extraRooms.delete(room);
    this.positions.forget(room);
    return this.send({ type: 'leave', room });
  }

  /** The last `seq` seen in `room`. */
  lastSeq(room) {
    return this.positions.get(room);
  }

  /** Rooms this client resumes after a reconnect. */
  rooms() {
    return [...new Set([...this.defaultRooms, ...this.extraRooms])];
  }

  /** A REST call with the current token: resolves with the JSON body, rejects with a
   *  RallypointError carrying the server's code and message. */
  async rest(method, path, body, headers = {}) {
    if (!this.fetch) throw new RallypointError('internal', 'no fetch in this environment');
    const init = {
      method,
      headers: { Authorization: `Bearer ${this.token}`, ...headers },
    };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await this.fetch(`${this.httpBase}${path}`, init);
    let json = null;
    try {
      json = await res.json();
    } catch {
      json = null;
    }
    if (!res.ok) {
      const e = (json && json.error) || {};
      throw new RallypointError(e.code || `http_${res.status}`, e.message || `HTTP ${res.status}`);
    }
    return json;
  }

  // ---- the socket ------------------------------------------------------------------------------

  isOpen() {
    return this.ws !== null && this.session !== null && this.ws.readyState === 1;
  }

  url() {
    const q = [`token=${encodeURIComponent(this.token)}`];
    const since = this.positions.sinceParam(this.defaultRooms);
    if (since) q.push(`since=${encodeURIComponent(since)}`);
    return `${this.wsBase}/ws?${q.join('&')}`;
  }

  open() {
    this.clearTimer('reconnect');
    if (this.closed || this.ws) return;
    let ws;
    try {
      ws = new this.WebSocket(this.url());
    } catch (e) {
      this.lost(null, `cannot open the socket: ${e.message}`);
      return;
    }
    this.ws = ws;
    this.session = null;
    ws.onmessage = (ev) => this.received(ws, ev.data);
    ws.onclose = (ev) => {
      if (this.ws === ws) this.lost(ev.code, ev.reason);
    };
    ws.onerror = () => {
      // A close always follows; nothing to do here.
    };
  }

  /** Forgets the current socket without waiting for its close handshake. */
  dropSocket(code) {
    const ws = this.ws;
    this.ws = null;
    this.session = null;
    this.clearTimer('heartbeat');
    if (!ws) return;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
    try {
      ws.close(code);
    } catch {
      // Already closed.
    }
  }

  /** The socket ended (or never opened): requeue what was written and try again later. */
  lost(code, reason) {
    const wasConnected = this.session !== null;
    this.dropSocket(1000);
    this.requeueWritten();
    if (this.closed) return;
    if (code === 4001 && this.opts.getToken) {
      this.renewToken().finally(() => this.retry(wasConnected));
      return;
    }
    if (FATAL_CLOSES.has(code)) {
      console.error(`rallypoint: the server closed the session with ${code} (${reason || ''})`);
    }
    this.retry(wasConnected);
  }

  retry(wasConnected) {
    if (this.closed) return;
    if (wasConnected) this.attempt = 0;
    const delay = backoffDelay(this.attempt, { ...this.opts.backoff, random: this.random });
    this.attempt += 1;
    this.setState(
      this.browserOffline || this.attempt > this.opts.offlineAfter ? State.OFFLINE : State.RECONNECTING,
    );
    if (this.browserOffline) return; // The `online` event reconnects.
    this.clearTimer('reconnect');
    this.timers.reconnect = this.setTimeout(() => {
      this.timers.reconnect = null;
      this.open();
    }, delay);
  }

  goneOffline() {
    this.browserOffline = true;
    if (this.closed) return;
    // The browser knows the network is gone: do not wait for a heartbeat to find out.
    if (this.ws) this.lost(null, 'the browser went offline');
    else this.setState(State.OFFLINE);
    this.clearTimer('reconnect');
  }

  backOnline() {
    this.browserOffline = false;
    if (this.closed) return;
    this.attempt = 0;
    this.setState(State.RECONNECTING);
    if (!this.ws) this.open();
  }

  received(ws, data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      console.error('rallypoint: a frame that is not JSON', data);
      return;
    }
    this.lastHeard = this.now();
    switch (msg.type) {
      case 'welcome':
        this.welcomed(msg);
        return;
      case 'ack':
      case 'error':
        if (msg.ref !== undefined && this.pending.has(msg.ref)) {
          this.answered(msg);
          return;
        }
        break;
      case 'joined':
        if (msg.recovered === false || this.positions.get(msg.room) === undefined) {
          this.positions.set(msg.room, msg.seq);
        }
        break;
      case 'resync':
        this.emit('resync', { room: msg.room });
        this.emit('*', msg);
        return;
      case 'pong':
        return;
      case 'left':
        // Taken out by the server (rights changed): not rejoined on reconnect.
        this.extraRooms.delete(msg.room);
        this.defaultRooms = this.defaultRooms.filter((r) => r !== msg.room);
        this.positions.forget(msg.room);
        break;
      default:
        if (!this.fresh(msg)) return;
    }
    this.emit(msg.type, msg);
    this.emit('*', msg);
  }

  /** True when `msg` is to be delivered: not seen in its room, and no copy of it delivered from
   *  another room (its room's position advances either way). */
  fresh(msg) {
    return this.positions.accept(msg) && !this.seen.repeat(msg);
  }

  welcomed(msg) {
    this.session = msg;
    this.attempt = 0;
    this.defaultRooms = Object.keys(msg.rooms || {});
    for (const [room, seq] of Object.entries(msg.rooms || {})) this.positions.seed(room, seq);
    // The rooms joined by hand before this connection: one a `welcome` handler joins now is
    // sent by its own `join`, not twice.
    const resume = [...this.extraRooms];
    this.setState(State.CONNECTED);
    this.emit('welcome', msg);
    this.emit('*', msg);
    // Rooms joined by hand are resumed with `join` + `since`, ahead of anything queued.
    for (const room of resume) {
      if (!this.extraRooms.has(room)) continue;
      const since = this.positions.get(room);
      this.writeRaw(since === undefined ? { type: 'join', room } : { type: 'join', room, since });
    }
    const queued = this.outbox;
    this.outbox = [];
    for (const ref of queued) this.write(ref);
    this.startHeartbeat(msg.heartbeat_ms || 5000);
  }

  answered(msg) {
    const p = this.pending.get(msg.ref);
    if (p.timer) this.clearTimeout(p.timer);
    p.timer = null;
    // A resend that overtook its first copy, still running on the server: ask again shortly, and
    // get the first copy's answer.
    if (msg.type === 'error' && msg.code === 'conflict' && p.msg.idempotency_key
      && /still running/.test(msg.message || '') && (p.retries || 0) < 40) {
      p.retries = (p.retries || 0) + 1;
      p.written = false;
      p.timer = this.setTimeout(() => {
        p.timer = null;
        if (!this.pending.has(msg.ref) || p.written) return;
        if (this.isOpen()) this.write(msg.ref);
        else if (!this.outbox.includes(msg.ref)) this.outbox.push(msg.ref);
      }, 250);
      return;
    }
    this.pending.delete(msg.ref);
    if (msg.type === 'ack') p.resolve(msg);
    else p.reject(new RallypointError(msg.code, msg.message, msg.ref));
  }

  write(ref) {
    const p = this.pending.get(ref);
    if (!p) return;
    if (!this.writeRaw(p.msg)) {
      this.outbox.push(ref);
      return;
    }
    p.written = true;
    if (p.timer) this.clearTimeout(p.timer);
    p.timer = this.setTimeout(() => {
      if (!this.pending.has(ref)) return;
      this.pending.delete(ref);
      p.reject(new RallypointError('timeout', `no answer within ${this.opts.ackTimeoutMs} ms`, ref));
    }, this.opts.ackTimeoutMs);
  }

  writeRaw(msg) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    try {
      this.ws.send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  /** Messages written on a socket that dropped before their answer go back to the front of the
   *  queue, in the order they were sent. */
  requeueWritten() {
    const again = [];
    for (const [ref, p] of this.pending) {
      if (!p.written) continue;
      p.written = false;
      if (p.timer) this.clearTimeout(p.timer);
      p.timer = null;
      again.push(ref);
    }
    this.outbox = [...again, ...this.outbox.filter((r) => !again.includes(r))];
  }

  /** An application `ping` every heartbeat; a silent server (2.5 heartbeats) counts as a drop. */
  startHeartbeat(ms) {
    this.clearTimer('heartbeat');
    const tick = () => {
      if (!this.ws) return;
      if (this.now() - this.lastHeard > ms * 2.5) {
        this.lost(null, 'the server went silent');
        return;
      }
      this.writeRaw({ type: 'ping' });
      this.timers.heartbeat = this.setTimeout(tick, ms);
    };
    this.timers.heartbeat = this.setTimeout(tick, ms);
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }

  clearTimer(name) {
    if (this.timers[name]) {
      this.clearTimeout(this.timers[name]);
      this.timers[name] = null;
    }
  }

  // ---- polling while down ----------------------------------------------------------------------

  schedulePoll() {
    if (!this.opts.pollMs || this.closed) return;
    this.clearTimer('poll');
    this.timers.poll = this.setTimeout(async () => {
      this.timers.poll = null;
      if (!this.isOpen() && !this.browserOffline) await this.poll();
      this.schedulePoll();
    }, this.opts.pollMs);
  }

  /** Fetches what each room got since its last seq over REST, delivered like live messages. */
  async poll() {
    for (const room of this.rooms()) {
      const since = this.positions.get(room);
      if (since === undefined) continue;
      let page;
      try {
        page = await this.rest('GET', `/api/v1/rooms/${encodeURIComponent(room)}/events?since=${since}`);
      } catch {
        return; // The server is out of reach too; the next poll tries again.
      }
      if (this.isOpen()) return; // The socket came back: its resume takes over.
      if (page.recovered === false) {
        this.positions.set(room, page.seq);
        this.emit('resync', { room });
        continue;
      }
      for (const msg of page.events || []) {
        if (!this.fresh(msg)) continue;
        this.emit(msg.type, msg);
        this.emit('*', msg);
      }
    }
  }

  // ---- token refresh ---------------------------------------------------------------------------

  scheduleRefresh() {
    this.clearTimer('refresh');
    if (!this.opts.getToken || this.closed) return;
    const exp = tokenExpiry(this.token);
    if (exp === null) return;
    const wait = Math.max(1000, exp * 1000 - this.opts.refreshMarginS * 1000 - this.now());
    // Timers cannot wait longer than about 24.8 days.
    this.timers.refresh = this.setTimeout(() => {
      this.timers.refresh = null;
      this.renewToken();
    }, Math.min(wait, 2 ** 31 - 1));
  }

  async renewToken() {
    let token;
    try {
      token = await this.opts.getToken();
    } catch (e) {
      console.error('rallypoint: getting a new token failed', e);
      this.timers.refresh = this.setTimeout(() => this.renewToken(), 10000);
      return;
    }
    if (!token) return;
    this.token = token;
    this.emit('token', token);
    if (this.isOpen()) {
      this.send({ type: 'refresh', token }).catch((e) => {
        if (e.code !== 'closed') console.error('rallypoint: the server refused the new token', e);
      });
    }
    this.scheduleRefresh();
  }
}
