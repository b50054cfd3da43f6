// The reporter's form, /emergency/report (SPEC 9), made for a phone: type, severity, description
// and where (the phone's position, typed, or picked on a small map), sent with
// `POST /api/v1/emergencies`; then the reporter's own emergencies and their status, live, from
// its default room `reporter:<sub>`. Opened with a reporter's token (in the link's fragment, or
// signed in with the dev login).

import { $, el, svg, place, clock, signedInPage, connect } from '/assets/common.js';
import {
  TYPES, SEVERITIES, STATUS_WORDS, headline, shortId, badge,
} from '/assets/emergency-words.js';
import * as state from '/assets/emergency-state.js';

let rp = null;
/** The pick map's centre and half spans, in degrees: the demo city until a position is known. */
const view = { lat: 48.8566, lng: 2.3522, dLat: 0.012, dLng: 0.02 };
const W = 600;
const H = 360;

// ---- where ---------------------------------------------------------------------------------------

function picked() {
  const lat = Number.parseFloat($('#lat').value);
  const lng = Number.parseFloat($('#lng').value);
  return Number.isFinite(lat) && Number.isFinite(lng) ? { lat, lng } : null;
}

/** Sets the location (rounded to about a metre), re-centring the map when it falls outside. */
function setPlace(lat, lng) {
  $('#lat').value = lat.toFixed(5);
  $('#lng').value = lng.toFixed(5);
  if (Math.abs(lat - view.lat) > view.dLat || Math.abs(lng - view.lng) > view.dLng) {
    view.lat = lat;
    view.lng = lng;
  }
  renderPick();
}

function toXY(p) {
  return [W / 2 + ((p.lng - view.lng) / view.dLng) * (W / 2), H / 2 - ((p.lat - view.lat) / view.dLat) * (H / 2)];
}

function fromXY(x, y) {
  return { lat: view.lat - ((y - H / 2) / (H / 2)) * view.dLat, lng: view.lng + ((x - W / 2) / (W / 2)) * view.dLng };
}

function renderPick() {
  const map = $('#pick-map');
  map.replaceChildren();
  for (let i = 1; i < 6; i++) {
    map.append(svg('line', { x1: (W / 6) * i, y1: 0, x2: (W / 6) * i, y2: H, class: 'grid' }));
    if (i < 4) map.append(svg('line', { x1: 0, y1: (H / 4) * i, x2: W, y2: (H / 4) * i, class: 'grid' }));
  }
  for (const e of state.emergencies.values()) {
    if (!state.OPEN.has(e.status)) continue;
    const [x, y] = toXY(e.location);
    map.append(svg('circle', { cx: x, cy: y, r: 7, class: 'mine-dot' }));
  }
  const p = picked();
  if (p) {
    const [x, y] = toXY(p);
    map.append(svg('g', { transform: `translate(${x.toFixed(1)} ${y.toFixed(1)}) scale(1.7)`, class: 'pin', 'data-lat': p.lat, 'data-lng': p.lng },
      svg('path', { d: 'M0,0 C-4,-10 -12,-14 -12,-22 A12,12 0 1 1 12,-22 C12,-14 4,-10 0,0 Z' }),
      svg('circle', { cy: -22, r: 4.5, class: 'pin-eye' })));
  }
}

function locate() {
  const status = $('#locate-status');
  if (!navigator.geolocation) {
    status.textContent = 'This browser cannot tell where you are: type it or pick it on the map.';
    return;
  }
  status.textContent = 'Finding you…';
  navigator.geolocation.getCurrentPosition(
    (pos) => {
      setPlace(pos.coords.latitude, pos.coords.longitude);
      status.textContent = `Found you (within ${Math.round(pos.coords.accuracy || 0)} m).`;
    },
    () => {
      status.textContent = 'Your position is not available: type it or pick it on the map.';
    },
    { enableHighAccuracy: true, timeout: 10000, maximumAge: 30000 },
  );
}

function wirePick() {
  const map = $('#pick-map');
  map.addEventListener('click', (ev) => {
    const ctm = map.getScreenCTM();
    if (!ctm) return;
    const pt = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(ctm.inverse());
    const p = fromXY(pt.x, pt.y);
    setPlace(p.lat, p.lng);
  });
  map.addEventListener('keydown', (ev) => {
    const step = { ArrowUp: [1, 0], ArrowDown: [-1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[ev.key];
    if (!step) return;
    ev.preventDefault();
    const p = picked() || { lat: view.lat, lng: view.lng };
    setPlace(p.lat + step[0] * view.dLat * 0.05, p.lng + step[1] * view.dLng * 0.05);
  });
  for (const id of ['#lat', '#lng']) $(id).addEventListener('change', () => {
    const p = picked();
    if (p) setPlace(p.lat, p.lng);
  });
}

// ---- the report ----------------------------------------------------------------------------------

async function report(ev) {
  ev.preventDefault();
  const result = $('#report-result');
  const show = (cls, text) => {
    result.className = cls;
    result.textContent = text;
  };
  const description = $('#description').value.trim();
  const at = picked();
  if (!description) {
    show('error', 'Say what is happening in the description.');
    $('#description').focus();
    return;
  }
  if (!at || Math.abs(at.lat) > 90 || Math.abs(at.lng) > 180) {
    show('error', 'Say where: use your location, type it, or pick it on the map.');
    $('#lat').focus();
    return;
  }
  const button = $('#report-form button[type=submit]');
  button.disabled = true;
  show('pending', 'Sending…');
  try {
    const e = await rp.rest('POST', '/api/v1/emergencies', {
      type: $('#type').value, severity: $('#severity').value, description, location: at,
    }, { 'Idempotency-Key': crypto.randomUUID() });
    state.putEmergency(e);
    $('#description').value = '';
    show('confirmed', `Reported at ${clock(e.created_at)} (${shortId(e.request_id)}): ${STATUS_WORDS[e.status]}.`);
    render();
  } catch (err) {
    show('error', `Not sent: ${err.message}. If a life is in danger, call the emergency number.`);
  } finally {
    button.disabled = false;
  }
}

// ---- the reporter's emergencies ------------------------------------------------------------------

function progress(e) {
  if (e.status === 'ASSIGNED') {
    const u = state.units.get(e.unit_id);
    return `Help is on the way: ${e.unit_id}${u && u.name && u.name !== e.unit_id ? ` (${u.name})` : ''}.`;
  }
  if (e.status === 'COMPLETED') return `Completed${e.unit_id ? ` by ${e.unit_id}` : ''}.`;
  if (e.status === 'CANCELLED') return 'Cancelled by the dispatchers.';
  return 'Received: waiting for a unit.';
}

function render() {
  const list = state.sortedEmergencies();
  $('#none-yet').hidden = list.length > 0;
  $('#my-emergencies').replaceChildren(...list.map((e) => el('li', {
    class: `mine-item sev-${e.severity}`, dataset: { emergency: e.request_id, status: e.status },
  },
  el('p', {}, badge(e.status, STATUS_WORDS), ' ', el('strong', { text: headline(e) })),
  el('p', { class: 'progress', text: progress(e) }),
  el('p', { class: 'muted' }, `${e.description} · ${place(e.location)} · `,
    el('time', { datetime: e.created_at, text: clock(e.created_at) })))));
  renderPick();
}

function listen() {
  rp.on('welcome', async (w) => {
    if (w.role !== 'reporter') {
      $('#whoami').textContent = 'This page is for reporters: open the link you were given, or sign in with your name.';
      return;
    }
    $('#whoami').textContent = `Signed in as ${w.sub}`;
    await reload();
  });
  rp.on('resync', () => reload());
  state.follow(rp, render, {
    updated: (action, e) => {
      $('#status-live').textContent = `${headline(e)}: ${progress(e)}`;
    },
  });
}

async function reload() {
  try {
    await state.load(rp, { withUnits: false });
    render();
  } catch (e) {
    $('#whoami').textContent = `Could not load your emergencies: ${e.message}`;
  }
}

function start(token) {
  rp = connect(token);
  window.rallypoint = rp; // For the console and the browser tests.
  listen();
  rp.connect();
  render();
}

function init() {
  for (const [value, text] of TYPES) $('#type').append(el('option', { value, text }));
  for (const [value, text] of SEVERITIES) $('#severity').append(el('option', { value, text }));
  $('#severity').value = 'high';
  $('#locate').addEventListener('click', locate);
  $('#report-form').addEventListener('submit', report);
  wirePick();
  signedInPage('#reporting', (form) => ({ sub: $('#reporter-id', form).value.trim(), role: 'reporter' }), start);
}

init();
