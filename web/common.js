// What the driver console and the dispatcher dashboard share: signing in, the connection dot,
// small DOM helpers and the words shown for the protocol's values.

import { RallypointClient, tokenExpiry } from '/client/rallypoint.js';

/** Incident kinds of SPEC 3, with the words people read. */
export const KINDS = [
  ['vehicle_breakdown', 'Vehicle breakdown'],
  ['accident', 'Accident'],
  ['medical', 'Medical emergency'],
  ['traffic_jam', 'Traffic jam'],
  ['weather', 'Severe weather'],
  ['road_closure', 'Road closure'],
  ['other', 'Other'],
];

export const ORDER_STEPS = [
  ['picked_up', 'Picked up'],
  ['out_for_delivery', 'Out for delivery'],
  ['delivered', 'Delivered'],
];

export const STATUS_WORDS = {
  pending: 'Waiting for a driver',
  assigned: 'Assigned',
  picked_up: 'Picked up',
  out_for_delivery: 'Out for delivery',
  delivered: 'Delivered',
  cancelled: 'Cancelled',
};

export const ACTION_WORDS = {
  REASSIGNMENT_INITIATED: 'Order reassigned',
  MAINTAIN: 'Order kept',
  NO_DRIVER_AVAILABLE: 'No driver free: order waiting',
};

/** `el('li', {class: 'x', text: 'y'}, child...)`. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export const $ = (sel, root = document) => root.querySelector(sel);

const SVG = 'http://www.w3.org/2000/svg';

/** `svg('circle', {r: 3}, child...)`: an SVG element. */
export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children) e.append(c);
  return e;
}

/** Gives an SVG shape a tooltip (and an accessible name). */
export function titled(node, text) {
  node.append(svg('title', {}, text));
  return node;
}

/**
 * The maps' plane: `{lat, lng}` points on an equirectangular projection (longitude shrunk by the
 * cosine of the mean latitude) scaled to fit a `width` × `height` view box with a margin. Returns
 * `at(p)` → `[x, y]`, or null when there is no point.
 */
export function plane(points, width, height) {
  if (!points.length) return null;
  const meanLat = points.reduce((s, p) => s + p.lat, 0) / points.length;
  const k = Math.cos((meanLat * Math.PI) / 180);
  const xs = points.map((p) => p.lng * k);
  const ys = points.map((p) => p.lat);
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const span = Math.max(maxX - minX, maxY - minY, 0.005);
  const scale = Math.min((width * 0.82) / Math.max(maxX - minX, span * 0.3),
    (height * 0.8125) / Math.max(maxY - minY, span * 0.3));
  const cx = (minX + maxX) / 2;
  const cy = (minY + maxY) / 2;
  return (p) => [width / 2 + (p.lng * k - cx) * scale, height / 2 - (p.lat - cy) * scale];
}

export function percent(score) {
  return `${Math.round(Number(score) * 100)}%`;
}

export function clock(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function place(p) {
  return p ? `${Number(p.lat).toFixed(4)}, ${Number(p.lng).toFixed(4)}` : '—';
}

/** The token of this tab: sessionStorage, so that each tab can be another person. */
const TOKEN_KEY = 'rallypoint.token';
const LOGIN_KEY = 'rallypoint.login';

export function storedToken() {
  const t = sessionStorage.getItem(TOKEN_KEY);
  const exp = t && tokenExpiry(t);
  if (!t || (exp !== null && exp * 1000 <= Date.now())) return null;
  return t;
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(LOGIN_KEY);
}

/** `POST /api/v1/dev/login`: a token when the dev login is on (the demo), else an Error. */
export async function devLogin(body) {
  const res = await fetch('/api/v1/dev/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json().catch(() => null);
  if (res.status === 404) throw new Error('The dev login is off on this server: paste a token instead.');
  if (!res.ok || !json || !json.token) {
    throw new Error((json && json.error && json.error.message) || `The login failed (HTTP ${res.status}).`);
  }
  sessionStorage.setItem(TOKEN_KEY, json.token);
  sessionStorage.setItem(LOGIN_KEY, JSON.stringify(body));
  return json.token;
}

export function useToken(token) {
  const t = token.trim();
  if (tokenExpiry(t) === null) throw new Error('That does not look like a Rallypoint token (a JWT with an expiry).');
  if (tokenExpiry(t) * 1000 <= Date.now()) throw new Error('That token has expired: ask for a new one.');
  sessionStorage.setItem(TOKEN_KEY, t);
  sessionStorage.removeItem(LOGIN_KEY);
  return t;
}

/** A new token before the current one expires: the dev login again, when that is how this tab
 *  signed in; a pasted token cannot be renewed here. */
async function renew() {
  const login = sessionStorage.getItem(LOGIN_KEY);
  if (!login) return null;
  return devLogin(JSON.parse(login));
}

/** A client for this tab's token, its state shown on the connection dot. */
export function connect(token) {
  const rp = new RallypointClient({ token, getToken: renew });
  rp.on('token', (t) => sessionStorage.setItem(TOKEN_KEY, t));
  const dot = $('#connection');
  const label = $('#connection-label');
  const show = (state) => {
    dot.dataset.state = state;
    label.textContent = { connected: 'Connected', reconnecting: 'Reconnecting…', offline: 'Offline' }[state] || state;
  };
  show(rp.state);
  rp.on('state', show);
  return rp;
}

/** Shows a notification in the list `#notifications`, newest first, and keeps the last 30. */
export function notify(kind, title, ...lines) {
  const list = $('#notifications');
  const item = el('li', { class: `note note-${kind}`, dataset: { kind } },
    el('strong', { class: 'note-title', text: title }),
    ...lines.filter(Boolean).map((l) => el('span', { class: 'note-line', text: l })),
    el('time', { class: 'note-time', text: clock(new Date().toISOString()) }));
  list.prepend(item);
  while (list.children.length > 30) list.lastElementChild.remove();
  return item;
}

/** Takes a token from the link's fragment (`#token=…`, never sent to a server) into this tab. */
export function tokenFromLink(errorTarget) {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (!hash.get('token')) return;
  try {
    useToken(hash.get('token'));
  } catch (e) {
    if (errorTarget) errorTarget.textContent = e.message;
  }
  history.replaceState(null, '', location.pathname);
}

/**
 * The sign-in of a page that a link may open signed in: Sign out, a token from the link, the
 * sign-in form (`buildLogin(form)`: the dev login's body), or the token this tab holds. Once
 * signed in, `#signin` hides, `panel` shows and `start(token)` runs.
 */
export function signedInPage(panel, buildLogin, start) {
  const go = (token) => {
    $('#signin').hidden = true;
    $(panel).hidden = false;
    start(token);
  };
  $('#sign-out').addEventListener('click', () => {
    signOut();
    location.reload();
  });
  tokenFromLink($('.signin-error'));
  signIn($('#signin-form'), buildLogin, go);
  const token = storedToken();
  if (token) go(token);
}

/** Wires the sign-in form: `onToken(token)` once this tab has a token. */
export function signIn(form, buildLogin, onToken) {
  const error = $('.signin-error', form);
  const fail = (e) => {
    error.textContent = e.message;
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const pasted = $('textarea[name=token]', form).value;
    try {
      onToken(pasted.trim() ? useToken(pasted) : await devLogin(buildLogin(form)));
    } catch (e) {
      fail(e);
    }
  });
}
