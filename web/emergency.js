// The authorities' emergency dashboard, /emergency (SPEC 9): every emergency with its status and
// unit, Dispatch (the nearest available unit, or the one chosen), Complete and Cancel; the units
// and their statuses; a toast for each emergency created, assigned, completed or cancelled. It
// follows the `dispatch` room, so it never needs a refresh, and reloads over REST on each
// (re)connect and `resync` (the room's resume brings what came meanwhile).

import { $, el, place, clock, signedInPage, connect } from '/assets/common.js';
import {
  STATUS_WORDS, UNIT_WORDS, UNIT_TYPES, headline, shortId, badge, toast,
} from '/assets/emergency-words.js';
import * as state from '/assets/emergency-state.js';

let rp = null;

// ---- rendering ---------------------------------------------------------------------------------

/** Redraws; a unit that only moved changes the units table alone (so a unit being chosen in a
 *  row's list is not disturbed by every position). */
function renderAll(why) {
  const focused = document.activeElement;
  renderCounts();
  if (why !== 'moved') renderEmergencies();
  renderUnits();
  // A row moved into its place loses the focus it held: give it back.
  if (focused && focused !== document.activeElement && focused.isConnected && !focused.disabled) focused.focus();
}

function renderCounts() {
  const es = [...state.emergencies.values()];
  $('#count-pending').textContent = es.filter((e) => e.status === 'PENDING').length;
  $('#count-assigned').textContent = es.filter((e) => e.status === 'ASSIGNED').length;
  const by = { AVAILABLE: 0, DISPATCHED: 0, OFFLINE: 0 };
  for (const u of state.units.values()) by[state.unitStatus(u.unit_id)] += 1;
  $('#count-available').textContent = by.AVAILABLE;
  $('#count-dispatched').textContent = by.DISPATCHED;
  $('#count-offline').textContent = by.OFFLINE;
}

/** Keeps one row per key, updating cells in place so focus, a chosen unit and a shown error stay. */
function rowFor(tbody, key, build) {
  let tr = tbody.querySelector(`tr[data-key="${CSS.escape(key)}"]`);
  if (!tr) {
    tr = build();
    tr.dataset.key = key;
    tbody.append(tr);
  }
  return tr;
}

function unitName(id) {
  const u = state.units.get(id);
  return u ? `${id} (${u.name})` : id;
}

function renderEmergencies() {
  const tbody = $('#emergencies tbody');
  const list = state.sortedEmergencies();
  $('#no-emergencies').hidden = list.length > 0;
  const available = state.sortedUnits().filter((u) => state.unitStatus(u.unit_id) === 'AVAILABLE');
  for (const [i, e] of list.entries()) {
    const tr = rowFor(tbody, e.request_id, () => buildRow(e.request_id));
    // In sorted order, moving only a row out of its place (a move takes the focus off it).
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i]);
    tr.dataset.emergency = e.request_id;
    tr.dataset.status = e.status;
    tr.dataset.unit = e.unit_id || '';
    const [what, status, where, unit, reported] = tr.children;
    what.replaceChildren(el('strong', { text: headline(e) }), el('br'),
      el('span', { class: 'description', text: e.description }), el('br'),
      el('span', { class: 'muted', text: shortId(e.request_id) }));
    what.className = `sev sev-${e.severity}`;
    status.replaceChildren(badge(e.status, STATUS_WORDS));
    where.textContent = place(e.location);
    unit.textContent = e.unit_id ? unitName(e.unit_id) : '—';
    reported.replaceChildren(el('time', { datetime: e.created_at, text: clock(e.created_at) }),
      el('span', { class: 'muted', text: ` by ${e.reported_by || '—'}` }));
    const select = tr.querySelector('select');
    const choices = available.map((u) => u.unit_id).join(' ');
    if (select.dataset.choices !== choices) {
      // Rebuilt only when the available units change, keeping the one chosen if it still is.
      select.dataset.choices = choices;
      const chosen = select.value;
      select.replaceChildren(el('option', { value: '', text: 'Nearest available' }),
        ...available.map((u) => el('option', { value: u.unit_id, text: `${u.unit_id} ${u.name} (${UNIT_TYPES[u.unit_type] || 'unit'})` })));
      select.value = [...select.options].some((o) => o.value === chosen) ? chosen : '';
    }
    const pending = e.status === 'PENDING';
    select.disabled = !pending;
    tr.querySelector('.do-dispatch').disabled = !pending;
    tr.querySelector('.do-complete').disabled = e.status !== 'ASSIGNED';
    tr.querySelector('.do-cancel').disabled = !state.OPEN.has(e.status);
  }
}

function buildRow(id) {
  const label = shortId(id);
  const error = el('span', { class: 'error action-error', role: 'alert' });
  const select = el('select', { class: 'unit-choice', 'aria-label': `Unit for emergency ${label}` });
  const act = (cls, text, aria, path, body) => {
    const b = el('button', { type: 'button', class: cls, text, 'aria-label': aria });
    b.addEventListener('click', () => step(b, error, path, body ? body() : undefined));
    return b;
  };
  const base = `/api/v1/emergencies/${encodeURIComponent(id)}`;
  const dispatch = act('do-dispatch primary', 'Dispatch', `Dispatch a unit to emergency ${label}`,
    `${base}/dispatch`, () => (select.value ? { unit_id: select.value } : {}));
  const complete = act('do-complete', 'Complete', `Complete emergency ${label}`, `${base}/complete`);
  const cancel = act('do-cancel danger', 'Cancel', `Cancel emergency ${label}`, `${base}/cancel`);
  return el('tr', {},
    el('td'), el('td'), el('td'), el('td'), el('td'),
    el('td', { class: 'actions' }, select, dispatch, complete, cancel, error));
}

/** One of the row's steps; the answer is shown at once, the messages confirm it everywhere. */
async function step(button, error, path, body) {
  error.textContent = '';
  error.classList.remove('ok');
  button.disabled = true;
  try {
    const e = await rp.rest('POST', path, body, { 'Idempotency-Key': crypto.randomUUID() });
    state.putEmergency(e);
  } catch (err) {
    error.textContent = `${button.textContent} refused: ${err.message}`;
  } finally {
    renderAll();
    // A step done disables its own button: the focus goes on to the row's next step (Complete
    // after Dispatch) rather than back to the top of the page.
    if (button.disabled && (document.activeElement === button || document.activeElement === document.body)) {
      const next = [...button.closest('tr').querySelectorAll('button')].find((b) => !b.disabled);
      if (next) next.focus();
    }
  }
}

function renderUnits() {
  const tbody = $('#units tbody');
  const list = state.sortedUnits();
  $('#no-units').hidden = list.length > 0;
  for (const u of list) {
    const tr = rowFor(tbody, u.unit_id, () => el('tr', {},
      el('th', { scope: 'row', text: u.unit_id }), el('td'), el('td'), el('td'), el('td'), el('td')));
    const status = state.unitStatus(u.unit_id);
    tr.dataset.unit = u.unit_id;
    tr.dataset.status = status;
    const [, name, kind, st, on, at] = tr.children;
    name.textContent = u.name;
    kind.textContent = UNIT_TYPES[u.unit_type] || '—';
    st.replaceChildren(badge(status, UNIT_WORDS));
    const emergency = state.unitEmergency(u.unit_id);
    on.textContent = emergency ? shortId(emergency) : '—';
    at.textContent = u.location ? place(u.location) : '—';
  }
}

// ---- the server's messages ---------------------------------------------------------------------

async function reload() {
  try {
    await state.load(rp);
    renderAll();
  } catch (e) {
    $('#whoami').textContent = `Could not load the emergencies: ${e.message}`;
  }
}

function listen() {
  rp.on('welcome', (w) => {
    if (w.role !== 'dispatcher' && w.role !== 'admin') {
      $('#whoami').textContent = 'This dashboard is for dispatchers and admins: reporters use /emergency/report.';
      return;
    }
    $('#whoami').textContent = `Signed in as ${w.sub} (${w.role})`;
    reload();
  });
  rp.on('resync', () => reload());
  state.follow(rp, renderAll, {
    created: (e) => toast('created', `New emergency: ${headline(e)}`, `${e.description} · ${place(e.location)}`),
    updated: (action, e, unit) => {
      const who = unit ? unitName(unit.unit_id) : e.unit_id;
      if (action === 'assigned') toast('assigned', `${who} dispatched`, `to ${headline(e)} · ${shortId(e.request_id)}`);
      else if (action === 'completed') toast('completed', `Emergency completed: ${headline(e)}`, who ? `${who} is available again` : '');
      else if (action === 'cancelled') toast('cancelled', `Emergency cancelled: ${headline(e)}`, who ? `${who} is free` : '');
    },
  });
}

function start(token) {
  rp = connect(token);
  window.rallypoint = rp; // For the console and the browser tests.
  listen();
  rp.connect();
  renderAll();
}

signedInPage('#dashboard', (form) => ({
  sub: $('#user', form).value.trim() || 'dispatch-1',
  role: $('#role', form).value,
}), start);
