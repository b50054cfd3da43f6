// The operator page, /ops/{event_id} (SPEC 8, PROTOCOL 19): one event's control room, made for a
// wall screen and usable on a phone and by keyboard. The density map, the alerts with Resolve,
// the action buttons, the report feed and the risk meter, kept current by the `event:<id>` room
// (joined once; the client resumes it with `since` after a reconnect) and loaded over REST on
// every (re)connect and `resync`.

import { $, el, clock, connect, signedInPage } from '/assets/common.js';
import { drawMap } from '/assets/ops-map.js';

const EVENT_ID = decodeURIComponent(location.pathname.split('/')[2] || '');
const ROOM = `event:${EVENT_ID}`;

/** The commands an operator sends with one press, for the zone chosen. */
export const ACTIONS = ['Open Gate 3', 'Close Gate 1', 'Send stewards', 'Hold entry', 'Make announcement'];

const ML_WORDS = {
  model: 'Built-in model',
  service: 'Risk service',
  fallback: 'Built-in model (the risk service did not answer)',
};

let rp = null;
let role = null;
const zones = new Map();
const alerts = new Map();
let actions = [];
let reports = [];
let map = { points: [], density: [], updatedAt: null, source: '' };
let insight = null;
let prediction = null;
let asked = false;

const zoneName = (id) => (id && zones.get(id)?.name) || id || 'Whole event';
const time = (ts) => {
  const t = Date.parse(ts);
  return Number.isNaN(t) ? 0 : t;
};
const key = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);

/** Takes an alert unless the one held is further on (resolved, or raised). */
function putAlert(a) {
  if (!a || !a.id) return false;
  const known = alerts.get(a.id);
  if (known && known.status === 'resolved' && a.status !== 'resolved') return false;
  if (known && known.status === a.status && known.severity === 'critical' && a.severity !== 'critical') return false;
  alerts.set(a.id, { ...known, ...a });
  const z = zones.get(a.zoneId);
  if (z && a.status === 'open' && Number.isFinite(a.count)) z.count = a.count;
  return true;
}

/** Adds `item` to `list` (by id, newest first, at most 50). */
function putNewest(list, item) {
  if (!item || !item.id || list.some((x) => x.id === item.id)) return list;
  return [item, ...list].sort((a, b) => time(b.createdAt) - time(a.createdAt)).slice(0, 50);
}

function alerting() {
  return new Set([...alerts.values()].filter((a) => a.status === 'open').map((a) => a.zoneId));
}

/** Devices in each zone, from the density cells whose centre is inside its bounds. */
function devicesIn(z) {
  const b = z.bounds;
  if (!b) return 0;
  return (map.density || []).filter((c) => c.lat >= b.south && c.lat <= b.north && c.lng >= b.west && c.lng <= b.east)
    .reduce((s, c) => s + (c.count || 0), 0);
}

let drawPending = false;
function renderMap() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    const hot = alerting();
    drawMap($('#map'), [...zones.values()], hot, map);
    const live = (map.density || []).reduce((n, c) => n + (c.count || 0), 0);
    const red = [...hot].map(zoneName).join(', ');
    $('#map').setAttribute('aria-label', `Density map: ${live} live devices in ${(map.density || []).length} cells`
      + `${red ? `; alerting: ${red}` : '; none alerting'}. The zone list below says the same.`);
    renderZones();
  });
}

function renderZones() {
  const hot = alerting();
  $('#zones').replaceChildren(...[...zones.values()].map((z) => el('li', {
    class: hot.has(z.id) ? 'zone alerting' : 'zone',
    dataset: { zone: z.id, alerting: String(hot.has(z.id)), count: String(z.count ?? 0), devices: String(devicesIn(z)) },
  }, el('strong', { text: z.name }), ` · ${z.count ?? 0} counted of ${z.capacity} (alert above ${z.threshold})`,
  ` · ${devicesIn(z)} devices `, hot.has(z.id) ? el('span', { class: 'badge st-alert', text: 'Alert' }) : null)));
  const live = (map.density || []).reduce((s, c) => s + (c.count || 0), 0);
  $('#map-status').textContent = live
    ? `${live} live devices in ${map.density.length} cells; ${map.points.length} pinged in the last batch (${clock(map.updatedAt)}).`
    : 'No live devices.';
  // The zone select is rebuilt only when the zones change, so an operator choosing in it is
  // never interrupted by the map's updates.
  const select = $('#action-zone');
  const ids = [...zones.keys()].join(' ');
  if (select.dataset.zones !== ids) {
    const chosen = select.value;
    select.replaceChildren(el('option', { value: '', text: 'Whole event' }),
      ...[...zones.values()].map((z) => el('option', { value: z.id, text: z.name })));
    select.value = chosen;
    select.dataset.zones = ids;
  }
}

/** The zones' camera counts, read again with each insight (they change without an alert). */
let countsAt = 0;
async function refreshCounts() {
  if (Date.now() - countsAt < 5000) return;
  countsAt = Date.now();
  try {
    const event = await rp.rest('GET', `/api/v1/events/${encodeURIComponent(EVENT_ID)}`);
    for (const z of event.zones || []) zones.set(z.id, { ...zones.get(z.id), ...z });
    renderMap();
  } catch {
    // The next insight or reconnect tries again.
  }
}

function renderAlerts() {
  const focused = document.activeElement?.dataset?.resolve;
  const list = [...alerts.values()].sort((a, b) =>
    Number(b.status === 'open') - Number(a.status === 'open') || time(b.createdAt) - time(a.createdAt));
  const open = list.filter((a) => a.status === 'open').length;
  $('#open-count').textContent = `${open} open`;
  $('#open-count').dataset.open = String(open);
  $('#no-alerts').hidden = list.length > 0;
  $('#alerts').replaceChildren(...list.slice(0, 100).map((a) => el('li', {
    class: `alert ${a.status}`,
    dataset: { alert: a.id, zone: a.zoneId, status: a.status, severity: a.severity },
  },
  el('p', { class: 'alert-head' },
    el('span', { class: `badge st-${a.status === 'open' ? a.severity : 'resolved'}`, text: a.status === 'open' ? a.severity : 'resolved' }),
    ' ', el('strong', { text: zoneName(a.zoneId) }), ' ', el('time', { class: 'muted', text: clock(a.createdAt) })),
  el('p', { class: 'alert-text', text: a.message }),
  a.status === 'resolved' ? el('p', { class: 'muted', text: `Resolved by ${a.resolvedBy || '?'} at ${clock(a.resolvedAt)}` }) : null,
  a.status === 'open' && may('act') ? el('button', {
    type: 'button', class: 'danger resolve', text: 'Resolve', 'aria-label': `Resolve alert in ${zoneName(a.zoneId)}`,
    dataset: { resolve: a.id }, onclick: () => resolve(a.id),
  }) : null)));
  if (focused) {
    const again = $(`button[data-resolve="${CSS.escape(focused)}"]`);
    if (again) again.focus();
    else nextFocus();
  }
  renderMap();
}

/** After a resolve, the focus goes to the next open alert's Resolve, else the alerts' title. */
function nextFocus() {
  const next = $('#alerts button.resolve');
  (next || $('#alerts-title')).focus();
}

async function resolve(id) {
  const button = $(`button[data-resolve="${CSS.escape(id)}"]`);
  if (button) button.disabled = true;
  try {
    putAlert(await rp.rest('POST', `/api/v1/alerts/${encodeURIComponent(id)}/resolve`, undefined, { 'Idempotency-Key': key() }));
  } catch (e) {
    // Resolved by someone else meanwhile: the list catches up from the server.
    if (e.code !== 'conflict' && e.code !== 'http_409') $('#announce').textContent = `Could not resolve: ${e.message}`;
    await reload();
  }
  renderAlerts();
  if (!document.activeElement || document.activeElement === document.body) nextFocus();
}

function renderActions() {
  $('#actions').replaceChildren(...actions.slice(0, 30).map((a) => el('li', {
    dataset: { action: a.id, command: a.command, zone: a.zoneId || '' },
  }, el('strong', { text: a.command }), ` · ${zoneName(a.zoneId)} · ${a.createdBy} · ${clock(a.createdAt)}`)));
}

function renderReports() {
  $('#no-reports').hidden = reports.length > 0;
  $('#reports').replaceChildren(...reports.slice(0, 30).map((r) => el('li', {
    dataset: { report: r.id, type: r.type },
  }, el('span', { class: 'badge', text: r.type }), ' ', el('span', { text: r.message }),
  el('span', { class: 'muted', text: ` · ${r.createdBy} · ${clock(r.createdAt)}` }))));
}

function renderRisk() {
  if (insight) {
    const score = Number(insight.riskScore) || 0;
    $('#risk').dataset.score = score.toFixed(2);
    $('#risk').dataset.mlStatus = insight.mlStatus || '';
    $('#risk').dataset.level = score >= 0.7 ? 'high' : score >= 0.4 ? 'medium' : 'low';
    $('#risk-meter').value = score;
    $('#risk-score').textContent = `${Math.round(score * 100)}%`;
    $('#risk-recommendation').textContent = insight.recommendation || '';
    $('#risk-source').textContent = `${ML_WORDS[insight.mlStatus] || insight.mlStatus}, confidence ${Math.round((insight.confidence || 0) * 100)}%`;
    $('#risk-time').textContent = clock(insight.generatedAt);
  }
  if (prediction) {
    $('#horizon').textContent = String(prediction.horizonMinutes);
    $('#predictions').replaceChildren(...(prediction.predictions || []).map((p) => el('li', {
      dataset: { zone: p.zoneId, risk: Number(p.risk).toFixed(2) },
    }, el('strong', { text: zoneName(p.zoneId) }), ` · ${Math.round(Number(p.risk) * 100)}%`)));
  }
}

function renderAll() {
  renderAlerts();
  renderActions();
  renderReports();
  renderRisk();
}

/** What this token's role may do here: `watch`, `act` (resolve, actions), `ask` (insights). */
function may(what) {
  if (what === 'act') return role === 'operator' || role === 'admin';
  if (what === 'ask') return role === 'operator' || role === 'dispatcher' || role === 'admin';
  return true;
}

function renderButtons() {
  $('#action-buttons').replaceChildren(...ACTIONS.map((command) => el('button', {
    type: 'button', class: 'primary', text: command, disabled: !may('act'), onclick: (ev) => act(command, ev.currentTarget),
  })));
}

async function act(command, button) {
  const zone = $('#action-zone').value || undefined;
  button.disabled = true;
  $('#action-error').textContent = '';
  try {
    actions = putNewest(actions, await rp.rest('POST', '/api/v1/actions',
      { event_id: EVENT_ID, command, zone_id: zone }, { 'Idempotency-Key': key() }));
    renderActions();
  } catch (e) {
    $('#action-error').textContent = `${command} was not sent: ${e.message}`;
  } finally {
    button.disabled = false;
  }
}

/** The polling GETs: the event, its alerts, actions, reports and map. */
async function reload() {
  const id = encodeURIComponent(EVENT_ID);
  try {
    const [event, as, acts, reps, snapshot] = await Promise.all([
      rp.rest('GET', `/api/v1/events/${id}`),
      rp.rest('GET', `/api/v1/events/${id}/alerts?limit=100`),
      rp.rest('GET', `/api/v1/events/${id}/actions?limit=30`),
      rp.rest('GET', `/api/v1/events/${id}/reports?limit=30`),
      rp.rest('GET', `/api/v1/events/${id}/map`),
    ]);
    $('#event-name').textContent = event.name;
    document.title = `Rallypoint — ${event.name}`;
    for (const z of event.zones || []) zones.set(z.id, { ...zones.get(z.id), ...z });
    for (const a of as) putAlert(a);
    for (const a of acts) actions = putNewest(actions, a);
    for (const r of reps) reports = putNewest(reports, r);
    if (!map.updatedAt || time(snapshot.updatedAt) > time(map.updatedAt)) map = snapshot;
    renderAll();
  } catch (e) {
    $('#whoami').textContent = refusal(e) || `Could not load the event: ${e.message}`;
    return;
  }
  if (!asked && may('ask') && !insight) {
    asked = true;
    const body = { event_id: EVENT_ID };
    Promise.all([
      rp.rest('POST', '/api/v1/ai/insights', body, { 'Idempotency-Key': key() }),
      rp.rest('POST', '/api/v1/ai/predictions', body, { 'Idempotency-Key': key() }),
    ]).then(([i, p]) => {
      insight = insight || i;
      prediction = prediction || p;
      renderRisk();
    }).catch(() => {});
  }
}

/** What to say when the server refuses this token the event (or has no such event), else null. */
function refusal(e) {
  if (e.code === 'forbidden' || e.code === 'http_403') {
    return `${rp.session?.sub || 'This token'} may not watch ${EVENT_ID}: sign out and sign in with a token for this event.`;
  }
  if (e.code === 'not_found' || e.code === 'http_404') return `There is no event ${EVENT_ID}.`;
  return null;
}

function listen() {
  rp.on('welcome', (w) => {
    role = w.role;
    $('#whoami').textContent = `Signed in as ${w.sub} (${w.role})`;
    renderButtons();
    if (!rp.rooms().includes(ROOM)) {
      rp.join(ROOM).catch((e) => {
        $('#whoami').textContent = refusal(e) || `Could not join ${ROOM}: ${e.message}`;
      });
    }
    reload();
  });
  rp.on('resync', () => reload());
  const on = (type, fn) => rp.on(type, (m) => {
    if (m.room === ROOM && m.data) fn(m.data);
  });
  on('alert:new', (a) => {
    const fresh = !alerts.has(a.id);
    putAlert(a);
    if (fresh && a.status === 'open') $('#announce').textContent = `New ${a.severity} alert in ${zoneName(a.zoneId)}: ${a.message}`;
    renderAlerts();
  });
  on('alert:updated', (a) => {
    if (putAlert(a) && a.status === 'open') $('#announce').textContent = `Alert in ${zoneName(a.zoneId)} now ${a.severity}: ${a.message}`;
    renderAlerts();
  });
  on('action:created', (a) => {
    actions = putNewest(actions, a);
    renderActions();
  });
  on('report:new', (r) => {
    reports = putNewest(reports, r);
    $('#report-news').textContent = `Report: ${r.message}`;
    renderReports();
  });
  on('map:update', (m) => {
    map = m;
    renderMap();
  });
  on('insight:update', (i) => {
    insight = i;
    renderRisk();
    refreshCounts();
  });
  on('prediction:update', (p) => {
    prediction = p;
    renderRisk();
  });
}

function start(token) {
  rp = connect(token);
  window.rallypoint = rp; // For the console and the browser tests.
  listen();
  rp.connect();
  renderButtons();
  renderAll();
}

function init() {
  $('#event-name').textContent = EVENT_ID || 'no event';
  if (!EVENT_ID) {
    $('.signin-error').textContent = 'Open the page of one event: /ops/<event id>.';
    $('#signin-form button[type=submit]').disabled = true;
    return;
  }
  signedInPage('#ops', (form) => ({
    sub: $('#user', form).value.trim() || 'op-1',
    role: $('#role', form).value,
    events: [EVENT_ID],
  }), start);
}

init();
