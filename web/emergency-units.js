// Units tracking, /emergency/units (SPEC 9): a map of the units (colour by status), the open
// emergencies and a line from each dispatched unit to its emergency, moving live with the units'
// positions from the `unit_tracking` room; beside it the same in words, for screen readers and
// the browser tests. Staff only; reloads over REST on each (re)connect and `resync`.

import {
  $, el, svg, titled, plane, place, signedInPage, connect,
} from '/assets/common.js';
import {
  UNIT_WORDS, UNIT_TYPES, STATUS_WORDS, headline, shortId, toast,
} from '/assets/emergency-words.js';
import * as state from '/assets/emergency-state.js';

let rp = null;

const CLASS_OF = { AVAILABLE: 'online', DISPATCHED: 'busy', OFFLINE: 'offline' };

/** The distance between two points, in words. */
function distance(a, b) {
  const r = Math.PI / 180;
  const h = Math.sin(((b.lat - a.lat) * r) / 2) ** 2
    + Math.cos(a.lat * r) * Math.cos(b.lat * r) * Math.sin(((b.lng - a.lng) * r) / 2) ** 2;
  const m = 2 * 6371000 * Math.asin(Math.sqrt(h));
  return m < 1000 ? `${Math.round(m / 10) * 10} m` : `${(m / 1000).toFixed(1)} km`;
}

function openEmergencies() {
  return state.sortedEmergencies().filter((e) => state.OPEN.has(e.status));
}

function render() {
  renderMap();
  renderLists();
}

function renderMap() {
  const map = $('#map');
  for (const n of [...map.childNodes]) if (n.nodeName !== 'title') n.remove();
  const placed = state.sortedUnits().filter((u) => u.location);
  const open = openEmergencies();
  const at = plane([...placed.map((u) => u.location), ...open.map((e) => e.location)], 1000, 640);
  if (!at) {
    map.append(svg('text', { x: 500, y: 320, 'text-anchor': 'middle', class: 'map-empty' }, 'No positions yet'));
    return;
  }
  const lines = svg('g', { class: 'lines' });
  const marks = svg('g');
  for (const e of open) {
    const [x, y] = at(e.location);
    const u = e.unit_id && state.units.get(e.unit_id);
    if (e.status === 'ASSIGNED' && u && u.location) {
      const [ux, uy] = at(u.location);
      lines.append(titled(svg('line', {
        x1: ux.toFixed(1), y1: uy.toFixed(1), x2: x.toFixed(1), y2: y.toFixed(1),
        class: 'dispatch-line', 'data-unit': u.unit_id, 'data-emergency': e.request_id,
      }), `${u.unit_id} to ${shortId(e.request_id)}`));
    }
    const g = svg('g', {
      transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})`,
      class: `emergency-marker ${e.status.toLowerCase()} sev-${e.severity}`,
      'data-emergency': e.request_id, 'data-status': e.status,
    });
    g.append(titled(svg('polygon', { points: '0,-16 15,11 -15,11' }), `${headline(e)}: ${e.description} (${STATUS_WORDS[e.status]})`));
    g.append(svg('text', { y: 7, 'text-anchor': 'middle', class: 'emergency-text' }, '!'));
    g.append(svg('text', { x: 18, y: 20, class: 'label' }, shortId(e.request_id)));
    marks.append(g);
  }
  for (const u of placed) {
    const status = state.unitStatus(u.unit_id);
    const [x, y] = at(u.location);
    const g = svg('g', {
      transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})`,
      class: `driver unit ${CLASS_OF[status]}`,
      'data-unit': u.unit_id, 'data-status': status,
      'data-lat': u.location.lat, 'data-lng': u.location.lng,
    });
    if (Number.isFinite(u.location.heading)) {
      g.append(svg('polygon', { points: '0,-22 6,-11 -6,-11', class: 'heading', transform: `rotate(${u.location.heading})` }));
    }
    g.append(titled(svg('circle', { r: 11 }), `${u.unit_id} ${u.name}: ${UNIT_WORDS[status]}`));
    g.append(svg('text', { x: 15, y: 5, class: 'label' }, u.unit_id));
    marks.append(g);
  }
  map.append(lines, marks);
}

function renderLists() {
  $('#unit-list').replaceChildren(...state.sortedUnits().map((u) => {
    const status = state.unitStatus(u.unit_id);
    const on = state.unitEmergency(u.unit_id);
    const e = on && state.emergencies.get(on);
    const to = e ? ` to ${headline(e)} (${shortId(on)})${u.location ? `, ${distance(u.location, e.location)} away` : ''}` : '';
    return el('li', { dataset: { unit: u.unit_id, status, emergency: on || '' } },
      el('span', { class: `badge st-${status.toLowerCase()}`, text: UNIT_WORDS[status] }), ' ',
      el('strong', { text: `${u.unit_id} ${u.name}` }),
      ` · ${UNIT_TYPES[u.unit_type] || 'unit'}${to} · `,
      el('span', { class: 'where', text: u.location ? place(u.location) : 'position unknown' }));
  }));
  const open = openEmergencies();
  $('#no-open').hidden = open.length > 0;
  $('#open-list').replaceChildren(...open.map((e) => el('li', { dataset: { emergency: e.request_id, status: e.status } },
    el('strong', { text: headline(e) }), ` · ${shortId(e.request_id)} · ${STATUS_WORDS[e.status]}`,
    e.unit_id ? ` · ${e.unit_id}` : '', ` · ${place(e.location)}`)));
}

async function reload() {
  try {
    await state.load(rp);
    render();
  } catch (e) {
    $('#whoami').textContent = `Could not load the units: ${e.message}`;
  }
}

function listen() {
  rp.on('welcome', (w) => {
    if (w.role !== 'dispatcher' && w.role !== 'admin') {
      $('#whoami').textContent = 'This map is for dispatchers and admins.';
      return;
    }
    $('#whoami').textContent = `Signed in as ${w.sub} (${w.role})`;
    // The units' positions, once: the client resumes the room itself after a reconnect (the
    // default room, `dispatch`, has the emergencies' messages).
    if (!rp.rooms().includes('unit_tracking')) {
      rp.join('unit_tracking').catch((e) => {
        $('#whoami').textContent = `Could not follow the units: ${e.message}`;
      });
    }
    reload();
  });
  rp.on('resync', () => reload());
  state.follow(rp, render, {
    created: (e) => toast('created', `New emergency: ${headline(e)}`, e.description),
    updated: (action, e) => {
      if (action === 'assigned') toast('assigned', `${e.unit_id} dispatched`, headline(e));
      else if (action === 'completed') toast('completed', `Completed: ${headline(e)}`, e.unit_id ? `${e.unit_id} is available again` : '');
    },
  });
}

function start(token) {
  rp = connect(token);
  window.rallypoint = rp; // For the console and the browser tests.
  listen();
  rp.connect();
  render();
}

signedInPage('#tracking', (form) => ({
  sub: $('#user', form).value.trim() || 'dispatch-1',
  role: $('#role', form).value,
}), start);
