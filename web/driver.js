// The driver console: sign in, go online, take an order through to delivery, report an issue,
// and see what happens in the fleet.

import {
  $, el, KINDS, ORDER_STEPS, STATUS_WORDS, ACTION_WORDS, percent, clock, place,
  storedToken, signOut, signIn, connect, notify,
} from '/assets/common.js';
import { holdToConfirm } from '/assets/hold.js';
import * as unitEmergency from '/assets/unit-emergency.js';

const ACTIVE = new Set(['assigned', 'picked_up', 'out_for_delivery']);

const me = { id: null, name: null, status: 'offline' };
/** The driver's current orders, by id. */
const orders = new Map();
/** Emergency events and SOS alerts already shown (a replay after a reconnect must not show one
 *  twice). */
const seenEvents = new Set();
const seenAlerts = new Set();
/** How long the SOS button is held before it sends. */
const SOS_HOLD_MS = 1500;
let rp = null;

function current() {
  for (const o of orders.values()) if (ACTIVE.has(o.status)) return o;
  return null;
}

function keep(order) {
  if (!order || !order.id) return;
  const known = orders.get(order.id);
  if (known && known.version > order.version) return;
  if (order.driver_id !== me.id || !ACTIVE.has(order.status)) {
    drop(order.id);
    return;
  }
  if (!known) rp.join(`order:${order.id}`).catch(() => {});
  orders.set(order.id, order);
}

function drop(id) {
  if (orders.delete(id)) rp.leave(`order:${id}`).catch(() => {});
}

// ---- rendering ---------------------------------------------------------------------------------

function render() {
  $('#me-name').textContent = me.name || me.id || 'Driver';
  $('#me-id').textContent = me.name && me.id ? `(${me.id})` : '';
  $('#my-status').textContent = me.status;
  $('#go-online').disabled = me.status !== 'offline';
  $('#go-offline').disabled = me.status === 'offline';

  const o = current();
  $('#no-order').hidden = !!o;
  $('#order').hidden = !o;
  $('#report-submit').disabled = !o;
  if (!o) return;
  $('#order-id').textContent = o.id;
  $('#order-status').textContent = STATUS_WORDS[o.status] || o.status;
  $('#order-priority').textContent = o.priority;
  $('#order-pickup').textContent = place(o.pickup);
  $('#order-dropoff').textContent = place(o.dropoff);
  $('#order-eta').textContent = o.eta ? clock(o.eta) : '—';
  const offered = o.status === 'assigned' && !o.accepted_at;
  $('#offer').hidden = !offered;
  const steps = $('#steps');
  steps.replaceChildren();
  if (!offered) {
    const order = ['assigned', ...ORDER_STEPS.map(([s]) => s)];
    const next = ORDER_STEPS[order.indexOf(o.status)];
    if (next) {
      steps.append(el('button', {
        type: 'button', class: 'primary', id: `step-${next[0]}`, text: `Mark ${next[1].toLowerCase()}`,
        onclick: () => advance(o.id, next[0]),
      }));
    }
  }
}

// ---- actions -----------------------------------------------------------------------------------

async function setStatus(status) {
  $('#status-error').textContent = '';
  try {
    const ack = await rp.send({ type: 'status', status });
    me.status = ack.status || status;
  } catch (e) {
    $('#status-error').textContent = `Could not go ${status}: ${e.message}`;
  }
  render();
  if (me.status !== 'offline') sendLocation();
}

async function orderAction(msg, after) {
  $('#order-error').textContent = '';
  try {
    const ack = await rp.send(msg);
    after(ack);
  } catch (e) {
    $('#order-error').textContent = e.message;
  }
  render();
}

function advance(id, status) {
  orderAction({ type: 'order_status', order_id: id, status }, (ack) => {
    keep(ack.order);
    if (status === 'delivered') notify('info', `Order ${id} delivered`, 'Well done.');
  });
}

async function report(ev) {
  ev.preventDefault();
  const o = current();
  const result = $('#report-result');
  if (!o) {
    result.textContent = 'You have no order to report on.';
    return;
  }
  const kind = $('#report-kind').value;
  const comment = $('#report-comment').value.trim();
  const msg = { type: 'report', order_id: o.id, kind };
  if (comment) msg.comment = comment;
  result.className = 'pending';
  result.textContent = rp.state === 'connected'
    ? 'Sending your report…'
    : 'Report saved: it will be sent as soon as the connection is back.';
  $('#report-form').reset();
  try {
    const ack = await rp.send(msg);
    const e = ack.event;
    result.className = 'confirmed';
    result.textContent = `Report confirmed: ${e.reason}. Risk ${percent(e.risk_score)}. ${ACTION_WORDS[e.action_taken] || e.action_taken}${e.new_driver_id && e.new_driver_id !== me.id ? ` to ${e.new_driver_id}` : ''}.`;
    if (e.action_taken !== 'MAINTAIN') drop(e.order_id);
  } catch (err) {
    result.className = 'error';
    result.textContent = `The report failed: ${err.message}`;
  }
  render();
}

// ---- location: the device's when allowed, else a simulated drive near the demo city ------------

const DEMO_SPOTS = {
  'DRV-001': [48.8566, 2.3522],
  'DRV-002': [48.8600, 2.3400],
  'DRV-003': [48.8750, 2.3900],
};
let position = null;
let simulated = null;
/** The last position sent (the device's or the simulated one): where an SOS says the driver is. */
let lastSent = null;

function startLocation() {
  if (navigator.geolocation) {
    navigator.geolocation.watchPosition(
      (p) => {
        simulated = null;
        position = {
          lat: p.coords.latitude, lng: p.coords.longitude,
          speed: p.coords.speed ?? undefined, heading: p.coords.heading ?? undefined,
          accuracy: p.coords.accuracy ?? undefined,
        };
      },
      () => simulate(),
      { enableHighAccuracy: true, maximumAge: 5000, timeout: 10000 },
    );
  } else {
    simulate();
  }
  setInterval(sendLocation, 3000);
}

function simulate() {
  if (simulated || position) return;
  let h = 0;
  for (const c of me.id || '') h = (h * 31 + c.charCodeAt(0)) >>> 0;
  const [lat, lng] = DEMO_SPOTS[me.id] || [48.85 + (h % 400) / 10000, 2.30 + ((h >> 8) % 800) / 10000];
  simulated = { lat, lng, t: 0 };
}

function sendLocation() {
  if (!rp || me.status === 'offline' || rp.state !== 'connected') return;
  let loc = position;
  if (!loc && simulated) {
    simulated.t += 1;
    const a = simulated.t / 20;
    const lat = simulated.lat + 0.002 * Math.sin(a);
    const lng = simulated.lng + 0.003 * Math.cos(a);
    const heading = (((Math.atan2(0.003 * -Math.sin(a), 0.002 * Math.cos(a)) * 180) / Math.PI) + 360) % 360;
    loc = { lat, lng, speed: 8, heading };
  }
  if (!loc) return;
  lastSent = loc;
  const msg = { type: 'location', lat: loc.lat, lng: loc.lng };
  for (const k of ['speed', 'heading', 'accuracy']) if (Number.isFinite(loc[k])) msg[k] = loc[k];
  rp.send(msg).catch(() => {});
}

// ---- SOS: held for SOS_HOLD_MS, then sent with the current position ------------------------------

/** The driver's position now: the device's, else the last one sent, else one asked for. */
function whereAmI() {
  const known = position || lastSent;
  if (known) return Promise.resolve(known);
  if (simulated) return Promise.resolve({ lat: simulated.lat, lng: simulated.lng });
  return new Promise((ok) => {
    if (!navigator.geolocation) {
      ok(null);
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (p) => ok({ lat: p.coords.latitude, lng: p.coords.longitude }),
      () => ok(null),
      { enableHighAccuracy: true, maximumAge: 10000, timeout: 5000 },
    );
  });
}

async function sendSos() {
  const result = $('#sos-result');
  const show = (cls, text) => {
    result.className = cls;
    result.textContent = text;
  };
  show('pending', 'Sending your SOS…');
  const at = await whereAmI();
  if (!at) {
    show('error', 'Your position is unknown, so the SOS was not sent: call the emergency services.');
    return;
  }
  const msg = { type: 'sos', lat: at.lat, lng: at.lng };
  const text = $('#sos-message').value.trim();
  if (text) msg.message = text;
  if (rp.state !== 'connected') show('pending', 'SOS saved: it will be sent as soon as the connection is back.');
  try {
    const ack = await rp.send(msg);
    const a = ack.alert;
    seenAlerts.add(a.alert_id);
    $('#sos-message').value = '';
    show('confirmed', `SOS sent at ${clock(a.created_at)}: dispatch has your position (${place(a)}).`);
  } catch (e) {
    show('error', `The SOS failed: ${e.message}. Call the emergency services.`);
  }
}

// ---- the server's messages ---------------------------------------------------------------------

function listen() {
  rp.on('welcome', (w) => {
    if (w.role !== 'driver') {
      $('#status-error').textContent = 'This page is for drivers: dispatchers use /dispatch.';
      return;
    }
    me.id = w.driver_id;
    me.status = w.status || 'offline';
    for (const id of [...orders.keys()]) if (!(w.orders || []).some((o) => o.id === id)) drop(id);
    for (const o of w.orders || []) keep(o);
    render();
  });
  rp.on('emergency_event', (e) => {
    if (seenEvents.has(e.event_id)) return;
    seenEvents.add(e.event_id);
    const action = ACTION_WORDS[e.action_taken] || e.action_taken;
    notify('emergency', `Emergency reported by ${e.driver_id}`,
      `${e.reason} (order ${e.order_id})`,
      `Risk ${percent(e.risk_score)} · ${action}${e.new_driver_id ? ` to ${e.new_driver_id}` : ''}`);
  });
  rp.on('emergency_alert', (a) => {
    if (seenAlerts.has(a.alert_id)) return;
    seenAlerts.add(a.alert_id);
    if (a.driver_id === me.id) return; // Its own: the ack said so.
    notify('emergency', `SOS from ${a.driver_id}`, a.message, `At ${place(a)}`);
  });
  rp.on('emergency_alert_resolved', (r) => {
    if (r.driver_id === me.id) {
      const result = $('#sos-result');
      result.className = 'confirmed';
      result.textContent = `Dispatch (${r.resolved_by}) has resolved your SOS.`;
    }
  });
  rp.on('order_assigned', (m) => {
    if (m.driver_id !== me.id) return;
    keep(m.order);
    const o = m.order;
    notify('assigned', 'Order assigned to you!', `Order ${m.order_id}`,
      o ? `Pickup ${place(o.pickup)} → drop-off ${place(o.dropoff)}` : null,
      m.reason === 'emergency' && m.previous_driver_id ? `Taken over from ${m.previous_driver_id} after an emergency` : null);
    render();
  });
  rp.on('order_unassigned', (m) => {
    if (!orders.has(m.order_id)) return;
    drop(m.order_id);
    notify('info', `Order ${m.order_id} was taken off you`, m.reason ? `Reason: ${m.reason}` : null);
    render();
  });
  rp.on('order_updated', (m) => {
    const o = orders.get(m.order_id);
    if (!o) return;
    keep({ ...o, status: m.status, driver_id: m.driver_id, version: m.version, eta: m.eta });
    if (m.status === 'cancelled') notify('info', `Order ${m.order_id} was cancelled`);
    render();
  });
  rp.on('presence', (p) => {
    for (const c of p.changes || []) {
      if (c.driver_id === me.id) {
        if (c.name && c.name !== me.id && !me.name) me.name = c.name;
        me.status = c.status;
        render();
        continue;
      }
      if (c.status === 'online') notify('presence', `Driver ${c.driver_id} is now online`, c.name !== c.driver_id ? c.name : null);
    }
  });
  rp.on('resync', async () => {
    try {
      const list = await rp.rest('GET', '/api/v1/orders');
      for (const id of [...orders.keys()]) if (!list.some((o) => o.id === id && ACTIVE.has(o.status))) drop(id);
      for (const o of list) keep(o);
      render();
    } catch (e) {
      $('#status-error').textContent = `Could not reload your orders: ${e.message}`;
    }
  });
  rp.on('error', (e) => {
    if (!e.ref) $('#status-error').textContent = e.message;
  });
}

function start(token) {
  $('#signin').hidden = true;
  $('#console').hidden = false;
  rp = connect(token);
  window.rallypoint = rp; // For the console and the browser tests.
  listen();
  unitEmergency.setup(rp);
  rp.connect();
  startLocation();
  render();
}

function init() {
  const kinds = $('#report-kind');
  for (const [value, label] of KINDS) kinds.append(el('option', { value, text: label }));
  $('#go-online').addEventListener('click', () => setStatus('online'));
  $('#go-offline').addEventListener('click', () => setStatus('offline'));
  $('#accept').addEventListener('click', () => {
    const o = current();
    if (o) orderAction({ type: 'accept', order_id: o.id }, (ack) => keep(ack.order));
  });
  $('#decline').addEventListener('click', () => {
    const o = current();
    if (o) orderAction({ type: 'decline', order_id: o.id }, () => drop(o.id));
  });
  $('#sign-out').addEventListener('click', () => {
    signOut();
    location.reload();
  });
  $('#report-form').addEventListener('submit', report);
  holdToConfirm($('#sos'), {
    ms: SOS_HOLD_MS,
    onConfirm: sendSos,
    onHint: (hint) => {
      if (hint) {
        $('#sos-result').className = 'pending';
        $('#sos-result').textContent = hint;
      }
    },
  });
  signIn($('#signin-form'), (form) => {
    const id = $('#driver-id', form).value.trim();
    const name = $('#driver-name', form).value.trim();
    me.name = name || null;
    const body = { sub: id.toLowerCase(), role: 'driver', driver_id: id };
    if (name) body.name = name;
    return body;
  }, start);
  const token = storedToken();
  if (token) start(token);
}

init();
