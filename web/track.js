// The customer's tracking page, /track/{order_id}: the order's steps, its ETA and the courier on
// a map, live. It asks only for what a customer may have: its own order over REST, and its default
// room `customer:<id>` (order_updated, courier_location) over the socket. The server filters;
// this page never joins anything.

import {
  $, el, svg, titled, plane,
  storedToken, signOut, signIn, connect, tokenFromLink,
} from '/assets/common.js';

const STEPS = [
  ['pending', 'Order received'],
  ['assigned', 'Courier assigned'],
  ['picked_up', 'Picked up'],
  ['out_for_delivery', 'Out for delivery'],
  ['delivered', 'Delivered'],
];
const MOVING = new Set(['assigned', 'picked_up', 'out_for_delivery']);

const orderId = decodeURIComponent(location.pathname.split('/')[2] || '');
/** The order as this customer may see it, or null until it is loaded. */
let order = null;
/** The courier's last position, `{lat, lng, heading}`, while the order has a courier. */
let courier = null;
let rp = null;

// ---- state -------------------------------------------------------------------------------------

async function load() {
  try {
    const o = await rp.rest('GET', `/api/v1/orders/${encodeURIComponent(orderId)}`);
    apply(o);
  } catch (e) {
    // A 404 for another customer's order and an unknown one alike: nothing is shown of it.
    if (!order) fail(e.code === 'not_found' || e.code === 'http_404'
      ? `There is no order ${orderId} for you. Check the link your shop sent you.`
      : `Could not load the order: ${e.message}`);
  }
}

/** Takes a newer view of the order (an order object, or an `order_updated`). */
function apply(next) {
  if (order && Number(next.version) < Number(order.version)) return;
  const before = order && order.driver_id;
  order = { ...order, ...next };
  if (!order.driver_id || !MOVING.has(order.status)) courier = null;
  if (before && order.driver_id && before !== order.driver_id) {
    courier = null;
    $('#courier-note').textContent = `A new courier, ${order.driver_id}, is taking over your order.`;
    $('#courier-note').hidden = false;
  }
  render();
}

function fail(text) {
  order = null;
  courier = null;
  $('#tracking').hidden = true;
  $('#track-error').hidden = false;
  $('#track-error-text').textContent = text;
}

// ---- rendering ---------------------------------------------------------------------------------

function render() {
  if (!order) return;
  $('#track-error').hidden = true;
  $('#tracking').hidden = false;
  $('#order-id').textContent = order.id;
  const cancelled = order.status === 'cancelled';
  $('#cancelled').hidden = !cancelled;
  const at = STEPS.findIndex(([s]) => s === order.status);
  $('#steps').replaceChildren(...STEPS.map(([step, label], i) => {
    const state = cancelled ? 'skipped' : i < at ? 'done' : i === at ? 'current' : 'todo';
    return el('li', {
      class: `step ${state}`, dataset: { step },
      'aria-current': state === 'current' ? 'step' : null,
    }, el('span', { class: 'step-mark', 'aria-hidden': 'true', text: state === 'done' ? '✓' : String(i + 1) }),
    el('span', { class: 'step-label', text: label }));
  }));
  // Said once per change of step, not on every courier move.
  const said = cancelled ? 'Your order was cancelled.'
    : `${STEPS[at] ? STEPS[at][1] : order.status}.${order.eta && MOVING.has(order.status) ? ` Arriving around ${etaWords()}.` : ''}`;
  if ($('#status-live').dataset.status !== order.status) {
    $('#status-live').dataset.status = order.status;
    $('#status-live').textContent = said;
  }
  renderEta();
  $('#courier').textContent = order.driver_id || (cancelled ? '—' : 'not yet assigned');
  if (!MOVING.has(order.status)) $('#courier-note').hidden = true;
  $('#courier-where').textContent = courier && order.dropoff
    ? `Your courier is ${distance(courier, order.dropoff)} from your address.` : '';
  renderMap();
}

function etaWords() {
  return new Date(order.eta).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function renderEta() {
  const open = MOVING.has(order.status) || order.status === 'pending';
  const eta = open && order.eta ? new Date(order.eta) : null;
  $('#eta').textContent = order.status === 'delivered' ? 'delivered' : eta ? etaWords() : '—';
  const min = eta ? Math.round((eta.getTime() - Date.now()) / 60000) : null;
  $('#eta-in').textContent = min === null ? '' : min > 0 ? `(in ${min} min)` : '(any moment now)';
}

/** The distance between two points, in words. */
function distance(a, b) {
  const r = Math.PI / 180;
  const h = Math.sin(((b.lat - a.lat) * r) / 2) ** 2
    + Math.cos(a.lat * r) * Math.cos(b.lat * r) * Math.sin(((b.lng - a.lng) * r) / 2) ** 2;
  const m = 2 * 6371000 * Math.asin(Math.sqrt(h));
  return m < 1000 ? `${Math.round(m / 10) * 10} m` : `${(m / 1000).toFixed(1)} km`;
}

function renderMap() {
  const map = $('#map');
  for (const n of [...map.childNodes]) if (n.nodeName !== 'title') n.remove();
  const points = [order.pickup, order.dropoff, courier].filter(Boolean);
  const at = plane(points, 600, 420);
  if (!at) return;
  const layer = svg('g');
  if (order.pickup && order.dropoff) {
    const [px, py] = at(order.pickup);
    const [dx, dy] = at(order.dropoff);
    layer.append(svg('line', { x1: px, y1: py, x2: dx, y2: dy, class: 'route' }));
    layer.append(titled(svg('rect', { x: px - 12, y: py - 12, width: 24, height: 24, class: 'pickup' }), 'Pickup'));
    layer.append(titled(svg('polygon', { points: `${dx},${dy - 16} ${dx + 16},${dy} ${dx},${dy + 16} ${dx - 16},${dy}`, class: 'dropoff' }),
      'Your address'));
  }
  if (courier) {
    const [x, y] = at(courier);
    const g = svg('g', { id: 'courier-marker', class: 'driver busy', transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})` });
    if (Number.isFinite(courier.heading)) {
      g.append(svg('polygon', { points: '0,-32 9,-18 -9,-18', class: 'heading', transform: `rotate(${courier.heading})` }));
    }
    g.append(titled(svg('circle', { r: 16 }), `Your courier ${order.driver_id || ''}`));
    layer.append(g);
  }
  map.append(layer);
}

// ---- the server's messages ---------------------------------------------------------------------

function listen() {
  rp.on('welcome', (w) => {
    if (w.role !== 'customer') {
      fail('This page is for the customer of the order: sign in with your customer ID.');
      return;
    }
    // Every (re)connect: the order as it is now; the room's resume brings what came meanwhile.
    load();
  });
  rp.on('resync', () => load());
  rp.on('order_updated', (m) => {
    if (m.order_id !== orderId || !order) return;
    apply({ status: m.status, driver_id: m.driver_id, version: m.version, eta: m.eta });
  });
  rp.on('courier_location', (m) => {
    if (m.order_id !== orderId || !order || !MOVING.has(order.status)) return;
    courier = { lat: m.lat, lng: m.lng, heading: m.heading };
    render();
  });
}

function start(token) {
  $('#signin').hidden = true;
  rp = connect(token);
  window.rallypoint = rp; // For the console and the browser tests.
  listen();
  rp.connect();
  setInterval(() => order && renderEta(), 30000);
}

function init() {
  for (const b of document.querySelectorAll('.sign-out')) {
    b.addEventListener('click', () => {
      signOut();
      location.reload();
    });
  }
  if (!orderId) {
    fail('This link names no order.');
    $('#signin').hidden = true;
    return;
  }
  // A link from the shop may carry the token in its fragment (never sent to any server).
  tokenFromLink($('.signin-error'));
  signIn($('#signin-form'), (form) => {
    const id = $('#customer-id', form).value.trim();
    return { sub: `customer-${id}`, role: 'customer', customer_id: id };
  }, start);
  const token = storedToken();
  if (token) start(token);
}

init();
