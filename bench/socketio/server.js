// The Socket.IO 4 baseline of the benchmark (docs/LOADGEN.md): the dispatch job written as
// Socket.IO users write it. Drivers go online with a location; a report scores its risk with a
// simple formula, picks the nearest online driver, emits `emergency_event` to everyone and
// `order_assigned` to that one driver. No database, no rooms, no checks beyond the shape of
// the payloads: this is what our server is compared with, not a product.
//
// Usage: node server.js [PORT]   (or PORT=...; HOST defaults to 127.0.0.1, PORT to 8200)
//
// Events, client to server (each may take an ack callback):
//   online   {driver_id, lat, lng}        -> ack {ok: true}
//   location {lat, lng}                   -> ack {ok: true}
//   report   {report_id, run, driver_id, kind, lat?, lng?}
//            -> ack {ok: true, event_id}, or {error} for a malformed report
// Server to client:
//   emergency_event {event_id, report_id, run, driver_id, kind, risk_score, action_taken,
//                    new_driver_id, timestamp}                       to every socket
//   order_assigned  {event_id, driver_id, previous_driver_id, reason} to the nearest driver

'use strict';

const { createServer } = require('node:http');
const { randomUUID } = require('node:crypto');
const { Server } = require('socket.io');

const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.argv[2] || process.env.PORT || 8200);
const REASSIGN_THRESHOLD = 0.7;

// How much each kind of incident weighs in the risk score.
const KIND_WEIGHT = {
  vehicle_breakdown: 3.2,
  accident: 3.5,
  medical: 3.0,
  road_closure: 1.6,
  weather: 0.8,
  other: 0.3,
  traffic_jam: -0.4,
};

// driver_id -> { socketId, lat, lng, online }
const drivers = new Map();

function riskScore(kind) {
  const z = -1.0 + (KIND_WEIGHT[kind] ?? 0);
  return 1 / (1 + Math.exp(-z));
}

function distanceKm(a, b) {
  const rad = (d) => (d * Math.PI) / 180;
  const dLat = rad(b.lat - a.lat);
  const dLng = rad(b.lng - a.lng);
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLng / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.sqrt(h));
}

function nearestOnlineDriver(from, exceptId) {
  let best = null;
  let bestKm = Infinity;
  for (const [id, d] of drivers) {
    if (!d.online || id === exceptId) continue;
    const km = distanceKm(from, d);
    if (km < bestKm) {
      best = id;
      bestKm = km;
    }
  }
  return best;
}

const httpServer = createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok', connections: io.engine.clientsCount }));
    return;
  }
  res.writeHead(404);
  res.end();
});

const io = new Server(httpServer);

io.on('connection', (socket) => {
  socket.on('online', (data, ack) => {
    if (!data || typeof data.driver_id !== 'string') {
      if (typeof ack === 'function') ack({ error: 'online needs driver_id' });
      return;
    }
    socket.data.driverId = data.driver_id;
    drivers.set(data.driver_id, {
      socketId: socket.id,
      lat: Number(data.lat) || 0,
      lng: Number(data.lng) || 0,
      online: true,
    });
    if (typeof ack === 'function') ack({ ok: true });
  });

  socket.on('location', (data, ack) => {
    const driver = drivers.get(socket.data.driverId);
    if (driver && data) {
      driver.lat = Number(data.lat) || driver.lat;
      driver.lng = Number(data.lng) || driver.lng;
    }
    if (typeof ack === 'function') ack({ ok: true });
  });

  socket.on('report', (report, ack) => {
    if (!report || typeof report.driver_id !== 'string' || typeof report.kind !== 'string') {
      if (typeof ack === 'function') ack({ error: 'report needs driver_id and kind' });
      return;
    }
    const reporter = drivers.get(report.driver_id);
    const where = {
      lat: Number(report.lat) || (reporter ? reporter.lat : 0),
      lng: Number(report.lng) || (reporter ? reporter.lng : 0),
    };
    const score = riskScore(report.kind);
    const nearest = nearestOnlineDriver(where, report.driver_id);
    const event = {
      event_id: randomUUID(),
      report_id: report.report_id,
      run: report.run,
      driver_id: report.driver_id,
      kind: report.kind,
      risk_score: score,
      action_taken: score > REASSIGN_THRESHOLD ? 'REASSIGNMENT_INITIATED' : 'MAINTAIN',
      new_driver_id: nearest,
      timestamp: new Date().toISOString(),
    };
    io.emit('emergency_event', event);
    if (nearest) {
      io.to(drivers.get(nearest).socketId).emit('order_assigned', {
        event_id: event.event_id,
        driver_id: nearest,
        previous_driver_id: report.driver_id,
        reason: 'emergency',
      });
    }
    if (typeof ack === 'function') ack({ ok: true, event_id: event.event_id });
  });

  socket.on('disconnect', () => {
    const driver = drivers.get(socket.data.driverId);
    if (driver && driver.socketId === socket.id) driver.online = false;
  });
});

httpServer.listen(PORT, HOST, () => {
  console.log(`socket.io baseline listening on ${HOST}:${PORT}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
