// The Socket.IO suite's harness: a real `rallypoint serve` on a free port with its own SQLite
// file and a known secret (so the tests sign their own tokens, good and bad), the npm
// socket.io-client 4 pointed at it the way the frontends point it, a native `/ws` client, and
// waits that fail with what was seen instead of hanging.
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';
import WebSocket from 'ws';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '../..');
/** Server logs go there: `target/socketio/` unless ARTIFACTS_DIR says. */
export const ARTIFACTS = process.env.ARTIFACTS_DIR || join(REPO, 'target', 'socketio');
/** How long one step may take before the test fails: generous, the machines are shared. */
export const WAIT = 20_000;
/** The two ways the frontends connect: socket.io-client's default (polling, then the upgrade)
 *  and WebSocket only. Each test runs over both. */
export const TRANSPORTS = [
  { name: 'polling then websocket', opts: {} },
  { name: 'websocket only', opts: { transports: ['websocket'] } },
];

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function base64url(value) {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** An HS256 JWT of `claims` signed with `secret`, with `iat` and an `exp` an hour away unless the
 *  claims say otherwise. */
export function sign(secret, claims) {
  const now = Math.floor(Date.now() / 1000);
  const head = base64url({ alg: 'HS256', typ: 'JWT' });
  const body = base64url({ iat: now, exp: now + 3600, fleet: 'default', ...claims });
  const mac = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${mac}`;
}

/** Starts `rallypoint serve` (RALLYPOINT_BIN, else the debug build) with `env` added (e.g.
 *  `RALLYPOINT_SOCKETIO__PING_INTERVAL_MS`) and resolves once it says where it listens. */
export async function startServer(name, env = {}) {
  const bin = process.env.RALLYPOINT_BIN || join(REPO, 'target', 'debug', 'rallypoint');
  const dir = await mkdtemp(join(tmpdir(), 'rallypoint-socketio-'));
  await mkdir(ARTIFACTS, { recursive: true });
  const log = createWriteStream(join(ARTIFACTS, `${name}.server.log`));
  const secret = randomBytes(32).toString('hex');
  const childEnv = {
    ...process.env,
    RALLYPOINT_DATABASE__URL: join(dir, 'rallypoint.db'),
    RALLYPOINT_SERVER__DATA_DIR: dir,
    RALLYPOINT_SERVER__BIND: '127.0.0.1:0',
    RALLYPOINT_AUTH__SECRET: secret,
    RUST_LOG: process.env.RUST_LOG || 'info',
    ...env,
  };
  delete childEnv.RALLYPOINT_CONFIG;
  const child = spawn(bin, ['serve'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  const base = await new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`the server did not start within ${WAIT} ms:\n${out}`)), WAIT);
    child.on('error', (e) => fail(new Error(`cannot start ${bin}: ${e.message} (build it with cargo build, or set RALLYPOINT_BIN)`)));
    child.on('exit', (code) => fail(new Error(`the server exited with ${code} before it was ready:\n${out}`)));
    child.stderr.on('data', (chunk) => {
      log.write(chunk);
      if (out === null) return;
      out += chunk;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        out = null;
        ok(m[1]);
      }
    });
  });
  const sockets = new Set();
  const server = {
    base,
    secret,
    /** A token of this server for `claims` (`sub` and `role` at least). */
    token: (claims) => sign(secret, claims),
    admin: () => sign(secret, { sub: 'test-admin', role: 'admin' }),
    dispatcher: (sub = 'desk') => sign(secret, { sub, role: 'dispatcher' }),
    driver: (id, name = id) => sign(secret, { sub: `sub-${id}`, role: 'driver', driver_id: id, name }),
    /** A REST call, as an admin unless `token` says; resolves with the status and JSON body. */
    async api(method, path, body, token = server.admin()) {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let json = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: res.status, body: json };
    },
    /** The server publish API (SPEC 11): `{type, data}` to `room`; fails unless it is taken. */
    async publish(room, type, data) {
      const answer = await server.api('POST', `/api/v1/rooms/${encodeURIComponent(room)}/messages`, { type, data });
      if (answer.status !== 201) {
        throw new Error(`publishing ${type} to ${room}: ${answer.status} ${JSON.stringify(answer.body)}`);
      }
      return answer.body;
    },
    /** socket.io-client's `io(base, opts)`, closed when the server stops. */
    connect(opts = {}) {
      const socket = io(base, { forceNew: true, ...opts });
      sockets.add(socket);
      return socket;
    },
    /** A native `/ws` session (SPEC 3) that keeps every message it reads. */
    async native(token) {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/ws?token=${encodeURIComponent(token)}`);
      sockets.add(ws);
      const seen = [];
      let refs = 0;
      ws.on('message', (data) => seen.push(JSON.parse(String(data))));
      await new Promise((ok, fail) => {
        ws.once('open', ok);
        ws.once('error', fail);
      });
      const client = {
        ws,
        seen,
        send: (msg) => ws.send(JSON.stringify(msg)),
        /** The first message kept that `pred` matches, waiting for it. */
        find: (pred, what) => until(() => seen.find(pred), what || 'a native message', () => seen),
        /** Sends `msg` with a fresh `ref`; resolves with its `ack` or `error`. */
        async request(msg) {
          const ref = `r${(refs += 1)}`;
          ws.send(JSON.stringify({ ...msg, ref }));
          return client.find((m) => m.ref === ref && (m.type === 'ack' || m.type === 'error'), `the answer to ${msg.type}`);
        },
      };
      await client.find((m) => m.type === 'welcome', 'the welcome');
      return client;
    },
    async stop() {
      for (const s of sockets) {
        if (typeof s.disconnect === 'function') s.disconnect();
        else s.terminate();
      }
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(5000)]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Resolves with `check()`'s first truthy value, polling; fails after WAIT naming `what` and
 *  showing `seen()`. */
export async function until(check, what, seen = () => undefined) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) {
      throw new Error(`waited ${WAIT} ms for ${what}; seen: ${JSON.stringify(seen())}`);
    }
    await sleep(20);
  }
}

/** Records every event a socket.io-client socket receives, in order, as `{event, args}`, from
 *  before it connects (so nothing sent right after CONNECT is missed). */
export function record(socket) {
  const events = [];
  socket.onAny((event, ...args) => events.push({ event, args }));
  socket.events = events;
  return events;
}

/** The events named `event` a recorded socket has received so far. */
export function named(socket, event) {
  return socket.events.filter((e) => e.event === event);
}

/** Waits for an event named `event` whose first argument `pred` accepts, among those received
 *  from the `from`-th on; resolves with it. */
export function receive(socket, event, pred = () => true, from = 0) {
  return until(
    () => socket.events.slice(from).find((e) => e.event === event && pred(e.args[0])),
    `${event} on socket ${socket.id}`,
    () => socket.events.slice(from).map((e) => e.event),
  );
}

/** Resolves once a socket is connected (and, `upgraded`, carried by a WebSocket). */
export async function connected(socket, { upgraded = false } = {}) {
  await new Promise((ok, fail) => {
    if (socket.connected) return ok();
    const timer = setTimeout(() => fail(new Error(`no connect within ${WAIT} ms`)), WAIT);
    socket.once('connect', () => {
      clearTimeout(timer);
      ok();
    });
    socket.once('connect_error', (e) => {
      clearTimeout(timer);
      fail(new Error(`connect_error: ${e.message}`));
    });
  });
  if (upgraded) {
    await until(() => socket.io.engine?.transport?.name === 'websocket', 'the upgrade to websocket', () => socket.io.engine?.transport?.name);
  }
}

/** Resolves with the `connect_error` a socket gets (fails if it connects instead). */
export function connectError(socket) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no connect_error within ${WAIT} ms`)), WAIT);
    socket.once('connect', () => {
      clearTimeout(timer);
      fail(new Error(`connected as ${socket.id} where it should have been refused`));
    });
    socket.once('connect_error', (e) => {
      clearTimeout(timer);
      ok(e);
    });
  });
}

/** A driver online at `lat,lng` over Socket.IO, its acks checked. */
export async function onlineDriver(server, id, lat, lng, transport = {}) {
  const socket = server.connect({ auth: { token: server.driver(id) }, ...transport });
  record(socket);
  await connected(socket);
  const status = await socket.timeout(WAIT).emitWithAck('status', { status: 'online' });
  if (status?.error) throw new Error(`status online refused: ${JSON.stringify(status)}`);
  const at = await socket.timeout(WAIT).emitWithAck('location', { lat, lng });
  if (at?.error) throw new Error(`location refused: ${JSON.stringify(at)}`);
  return socket;
}
