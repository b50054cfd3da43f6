// The dispatcher dashboard: a live map of drivers and orders, drivers' SOS alerts, the incident
// feed, the orders table with the admin override, a driver's route replay, and counts.

import {
  $, el, svg, titled, plane, STATUS_WORDS, ACTION_WORDS, percent, clock, place,
  storedToken, signOut, signIn, connect,
} from '/assets/common.js';
import * as sos from '/assets/sos-alerts.js';
import * as replay from '/assets/replay.js';

const OPEN = new Set(['pending', 'assigned', 'picked_up', 'out_for_delivery']);

const drivers = new Map();
/** The emergency units' ids (SPEC 9): drivers too, but not delivery drivers; /emergency shows them. */
const unitIds = new Set();
const orders = new Map();
/** Newest first. */
const incidents = [];
const seenIncidents = new Set();
let rp = null;

// ---- state -------------------------------------------------------------------------------------

async function reload() {
  try {
    const [ds, os, is, alerts, us] = await Promise.all([
      rp.rest('GET', '/api/v1/drivers'),
      rp.rest('GET', '/api/v1/orders'),
      rp.rest('GET', '/api/v1/incidents?limit=50'),
      rp.rest('GET', '/api/v1/sos?open=true&limit=1000'),
      rp.rest('GET', '/api/v1/units').catch(() => []),
    ]);
    for (const u of us) unitIds.add(u.unit_id);
    drivers.clear();
    for (const d of ds) if (!d.unit_type && !unitIds.has(d.id)) drivers.set(d.id, d);
    sos.load(alerts);
    for (const o of os) orders.set(o.id, o);
    for (const i of [...is].reverse()) addIncident(i);
    renderAll();
  } catch (e) {
    $('#whoami').textContent = `Could not load the fleet: ${e.message}`;
  }
}

function upsertOrder(o) {
  const known = orders.get(o.id);
  if (known && known.version > o.version) return;
  orders.set(o.id, { ...known, ...o });
}

function addIncident(e) {
  if (seenIncidents.has(e.event_id)) return false;
  seenIncidents.add(e.event_id);
  incidents.unshift(e);
  incidents.sort((a, b) => String(b.timestamp).localeCompare(String(a.timestamp)));
  incidents.length = Math.min(incidents.length, 100);
  return true;
}

function driverOrders(id) {
  return [...orders.values()].filter((o) => o.driver_id === id && OPEN.has(o.status)).map((o) => o.id);
}

// ---- rendering ---------------------------------------------------------------------------------

function renderAll() {
  const focused = document.activeElement;
  renderCounts();
  renderDrivers();
  renderOrders();
  renderIncidents();
  renderMap();
  // A row moved into its place loses the focus it held: give it back.
  if (focused && focused !== document.activeElement && focused.isConnected && !focused.disabled) focused.focus();
}

function renderCounts() {
  const by = { online: 0, busy: 0, offline: 0 };
  for (const d of drivers.values()) by[d.status] = (by[d.status] || 0) + 1;
  $('#count-online').textContent = by.online;
  $('#count-busy').textContent = by.busy;
  $('#count-offline').textContent = by.offline;
  $('#count-orders').textContent = [...orders.values()].filter((o) => OPEN.has(o.status)).length;
}

async function refreshConnections() {
  try {
    const res = await fetch('/api/health/socket');
    const h = await res.json();
    $('#count-connections').textContent = h.connections;
  } catch {
    // The server is out of reach: the connection dot says so.
  }
}

/** Keeps one row per key, updating cells in place so a shown error or a chosen option stays. */
function rowFor(tbody, key, build) {
  let tr = tbody.querySelector(`tr[data-key="${CSS.escape(key)}"]`);
  if (!tr) {
    tr = build();
    tr.dataset.key = key;
    tbody.append(tr);
  }
  return tr;
}

function renderDrivers() {
  const tbody = $('#drivers tbody');
  for (const d of [...drivers.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    const tr = rowFor(tbody, d.id, () => el('tr', {},
      el('th', { scope: 'row', text: d.id }), el('td'), el('td'), el('td'), el('td'),
      el('td', {}, replay.button(d.id))));
    const [, name, status, held, at] = tr.children;
    name.textContent = d.name;
    status.replaceChildren(el('span', { class: `badge ${d.status}`, text: d.status }));
    held.textContent = driverOrders(d.id).join(', ') || '—';
    at.textContent = d.location ? place(d.location) : '—';
  }
}

function renderOrders() {
  const tbody = $('#orders tbody');
  const list = [...orders.values()].sort((a, b) =>
    Number(OPEN.has(b.status)) - Number(OPEN.has(a.status)) || a.id.localeCompare(b.id));
  for (const [i, o] of list.entries()) {
    const tr = rowFor(tbody, o.id, () => buildOrderRow(o.id));
    // In sorted order, moving only a row out of its place (a move takes the focus off it).
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i]);
    const [, status, driver, priority, eta] = tr.children;
    status.replaceChildren(el('span', { class: `badge ${o.status}`, text: STATUS_WORDS[o.status] || o.status }));
    driver.textContent = o.driver_id || '—';
    priority.textContent = o.priority;
    eta.textContent = o.eta ? clock(o.eta) : '—';
    const select = tr.querySelector('select');
    const chosen = select.value;
    select.replaceChildren(el('option', { value: '', text: 'Choose a driver' }),
      ...[...drivers.values()].filter((d) => d.id !== o.driver_id).map((d) =>
        el('option', { value: d.id, text: `${d.id} ${d.name} (${d.status})` })));
    select.value = [...select.options].some((op) => op.value === chosen) ? chosen : '';
    tr.querySelector('button').disabled = !OPEN.has(o.status);
  }
}

function buildOrderRow(id) {
  const select = el('select', { id: `override-${id}`, 'aria-label': `New driver for order ${id}` });
  const error = el('span', { class: 'error override-error', role: 'alert' });
  const button = el('button', { type: 'button', text: 'Override', 'aria-label': `Override the driver of order ${id}` });
  button.addEventListener('click', async () => {
    error.textContent = '';
    error.classList.remove('ok');
    if (!select.value) {
      error.textContent = 'Choose a driver first.';
      return;
    }
    button.disabled = true;
    try {
      const order = await rp.rest('POST', `/api/v1/orders/${encodeURIComponent(id)}/reassign`,
        { driver_id: select.value, reason: 'dispatcher override' });
      upsertOrder(order);
      error.classList.add('ok');
      error.textContent = `Moved to ${order.driver_id}.`;
      renderAll();
    } catch (e) {
      error.textContent = `Override refused: ${e.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return el('tr', {},
    el('th', { scope: 'row', text: id }), el('td'), el('td'), el('td'), el('td'),
    el('td', { class: 'override' }, select, button, error));
}

function renderIncidents() {
  const list = $('#incidents');
  $('#no-incidents').hidden = incidents.length > 0;
  list.replaceChildren(...incidents.map((e) => el('li', { class: `incident ${e.action_taken}`, dataset: { event: e.event_id } },
    el('p', { class: 'incident-head' },
      el('strong', { text: `${e.reason}` }), ` · order ${e.order_id} · ${e.driver_id}`),
    el('p', {},
      el('span', { class: 'risk', text: `Risk ${percent(e.risk_score)}` }),
      ` (${e.risk_source}) · `,
      el('span', { class: 'decision', text: `${ACTION_WORDS[e.action_taken] || e.action_taken}${e.new_driver_id ? ` → ${e.new_driver_id}` : ''}` })),
    el('time', { datetime: e.timestamp, text: clock(e.timestamp) }))));
}

function renderMap() {
  const map = $('#map');
  const points = [];
  const open = [...orders.values()].filter((o) => OPEN.has(o.status));
  for (const d of drivers.values()) if (d.location) points.push(d.location);
  for (const o of open) points.push(o.pickup, o.dropoff);
  points.push(...sos.points());
  points.push(...replay.points());
  for (const n of [...map.childNodes]) if (n.nodeName !== 'title') n.remove();
  if (!points.length) {
    map.append(svg('text', { x: 500, y: 320, 'text-anchor': 'middle', class: 'map-empty' }, 'No positions yet'));
    return;
  }
  const at = plane(points, 1000, 640);

  const layer = svg('g');
  for (const o of open) {
    const [px, py] = at(o.pickup);
    const [dx, dy] = at(o.dropoff);
    layer.append(svg('line', { x1: px, y1: py, x2: dx, y2: dy, class: 'route' }));
    const d = o.driver_id && drivers.get(o.driver_id);
    if (d && d.location) {
      const [vx, vy] = at(d.location);
      layer.append(svg('line', { x1: vx, y1: vy, x2: px, y2: py, class: 'assignment', 'data-order': o.id, 'data-driver': d.id }));
    }
    layer.append(titled(svg('rect', { x: px - 7, y: py - 7, width: 14, height: 14, class: 'pickup', 'data-order': o.id }),
      `Pickup of ${o.id} (${o.driver_id || 'no driver'})`));
    layer.append(titled(svg('polygon', { points: `${dx},${dy - 9} ${dx + 9},${dy} ${dx},${dy + 9} ${dx - 9},${dy}`, class: 'dropoff' }),
      `Drop-off of ${o.id}`));
    layer.append(svg('text', { x: px - 10, y: py + 24, class: 'label order-label', 'text-anchor': 'end' }, o.id));
  }
  for (const d of drivers.values()) {
    if (!d.location) continue;
    const [x, y] = at(d.location);
    const g = svg('g', { transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})`, class: `driver ${d.status}`, 'data-driver': d.id });
    if (Number.isFinite(d.location.heading)) {
      g.append(svg('polygon', { points: '0,-22 6,-11 -6,-11', class: 'heading', transform: `rotate(${d.location.heading})` }));
    }
    g.append(titled(svg('circle', { r: 10 }), `${d.id} ${d.name}: ${d.status}`));
    g.append(svg('text', { x: 14, y: 4, class: 'label' }, d.id));
    layer.append(g);
  }
  layer.append(replay.mapLayer(at));
  layer.append(sos.mapLayer(at));
  map.append(layer);
}

// ---- the server's messages ---------------------------------------------------------------------

function listen() {
  let loaded = false;
  rp.on('welcome', (w) => {
    $('#whoami').textContent = `Signed in as ${w.sub} (${w.role})`;
    if (w.role === 'driver') {
      $('#whoami').textContent = 'This dashboard is for dispatchers and admins: drivers use /driver.';
      return;
    }
    if (!loaded) {
      loaded = true;
      reload();
    }
  });
  rp.on('resync', () => reload());
  rp.on('driver_status', (m) => {
    if (unitIds.has(m.driver_id)) return;
    const d = drivers.get(m.driver_id) || { id: m.driver_id, name: m.name, location: null, orders: [] };
    drivers.set(m.driver_id, { ...d, name: m.name, status: m.status });
    renderAll();
  });
  rp.on('locations', (m) => {
    for (const l of m.drivers || []) {
      const d = drivers.get(l.driver_id);
      if (d) d.location = { lat: l.lat, lng: l.lng, speed: l.speed, heading: l.heading, timestamp: l.timestamp };
    }
    renderMap();
    renderDrivers();
  });
  rp.on('order_updated', async (m) => {
    if (!orders.has(m.order_id)) {
      try {
        upsertOrder(await rp.rest('GET', `/api/v1/orders/${encodeURIComponent(m.order_id)}`));
      } catch {
        return;
      }
    } else {
      upsertOrder({ id: m.order_id, status: m.status, driver_id: m.driver_id, version: m.version, eta: m.eta });
    }
    renderAll();
  });
  rp.on('emergency_alert', (a) => sos.raised(a));
  rp.on('emergency_alert_resolved', (r) => sos.cleared(r.alert_id));
  rp.on('emergency_event', (e) => {
    if (addIncident(e)) renderIncidents();
  });
}

function start(token) {
  $('#signin').hidden = true;
  $('#dashboard').hidden = false;
  rp = connect(token);
  window.rallypoint = rp; // For the console and the browser tests.
  sos.setup((method, path) => rp.rest(method, path), renderMap, (id) => drivers.get(id)?.name);
  replay.setup((method, path) => rp.rest(method, path), renderMap);
  listen();
  rp.connect();
  refreshConnections();
  setInterval(refreshConnections, 2000);
  renderAll();
}

function init() {
  $('#sign-out').addEventListener('click', () => {
    signOut();
    location.reload();
  });
  signIn($('#signin-form'), (form) => ({
    sub: $('#user', form).value.trim() || 'dispatch-1',
    role: $('#role', form).value,
  }), start);
  const token = storedToken();
  if (token) start(token);
}

init();
