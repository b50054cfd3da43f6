// The driver console's emergency card, for a unit (SPEC 9): an `emergency_assigned` in its own
// room `driver:<id>` shows loud (the card, a red notification, a vibration where the phone can)
// with what and where, and a Complete button sending `complete_emergency`; an authority's
// completion or cancel (`emergency_updated` in the same room) clears it. The emergency's id is
// kept in the tab, so a reload asks `GET /api/v1/emergencies/{id}` whether it is still on.

import { $, place, clock, notify } from '/assets/common.js';
import { headline, shortId, STATUS_WORDS } from '/assets/emergency-words.js';

const KEY = 'rallypoint.unit-emergency';
let rp = null;
/** The emergency this unit is on, or null. */
let current = null;

/** Wires the card to the console's client. */
export function setup(client) {
  rp = client;
  rp.on('emergency_assigned', (m) => assigned(m.data));
  rp.on('emergency_updated', (m) => ended(m.data));
  rp.on('welcome', (w) => {
    if (w.role === 'driver') refresh();
  });
  $('#unit-complete').addEventListener('click', complete);
}

function assigned(e) {
  if (!e || !e.request_id) return;
  const fresh = !current || current.request_id !== e.request_id;
  current = e;
  sessionStorage.setItem(KEY, e.request_id);
  result('', '');
  render();
  if (!fresh) return;
  notify('emergency', `Emergency: ${headline(e)}`, e.description, `Go to ${place(e.location)}`);
  try {
    navigator.vibrate?.([400, 150, 400]);
  } catch {
    // No vibration here: the card and the notification say it.
  }
}

/** An authority completed or cancelled this unit's emergency: the card says so and clears. */
function ended(change) {
  const e = change?.emergency;
  if (!e || !current || current.request_id !== e.request_id) return;
  if (change.action !== 'completed' && change.action !== 'cancelled') return;
  over(`${headline(e)} was ${change.action} by dispatch at ${clock(e.updated_at)}: you are available again.`);
  render();
}

async function refresh() {
  const id = sessionStorage.getItem(KEY);
  if (!id) return;
  try {
    const e = await rp.rest('GET', `/api/v1/emergencies/${encodeURIComponent(id)}`);
    if (e.status === 'ASSIGNED') current = e;
    else over(`${headline(e)} is ${STATUS_WORDS[e.status] || e.status}.`);
    render();
  } catch (err) {
    // Another driver's (a sign-in as someone else in this tab) or gone: forget it. Out of reach:
    // the next welcome asks again.
    if (err.code === 'forbidden' || err.code === 'not_found') over('');
  }
}

function over(text) {
  current = null;
  sessionStorage.removeItem(KEY);
  result(text ? 'done' : '', text);
}

function result(cls, text) {
  const r = $('#unit-emergency-result');
  r.className = cls;
  r.textContent = text;
}

function render() {
  const card = $('#unit-emergency');
  card.hidden = !current && !$('#unit-emergency-result').textContent;
  $('#unit-emergency-details').hidden = !current;
  $('#unit-complete').disabled = !current;
  if (!current) {
    $('#unit-emergency-title').textContent = 'Emergency';
    return;
  }
  $('#unit-emergency-title').textContent = `Emergency assigned: ${headline(current)}`;
  $('#unit-emergency-what').textContent = current.description;
  $('#unit-emergency-where').textContent = place(current.location);
  $('#unit-emergency-id').textContent = `${shortId(current.request_id)} · since ${clock(current.updated_at)}`;
}

async function complete() {
  if (!current) return;
  const e = current;
  $('#unit-complete').disabled = true;
  try {
    await rp.send({ type: 'complete_emergency', request_id: e.request_id });
    over(`Completed at ${clock(new Date().toISOString())}: you are available again.`);
  } catch (err) {
    if (err.code === 'conflict') over(`This emergency is over already (${err.message}).`);
    else result('error', `Not completed: ${err.message}`);
  }
  render();
}
