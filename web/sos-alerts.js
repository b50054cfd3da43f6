// The dashboard's SOS alerts (SPEC 10): every open alert in a red banner with the driver, the
// message, the place and a Resolve button, a marker on the map, a beep and the tab's title. Open
// alerts are loaded with `GET /api/v1/sos?open=true`, then follow `emergency_alert` and
// `emergency_alert_resolved`.

import { $, el, svg, titled, clock, place } from '/assets/common.js';

/** Open alerts by id: `{alert_id, driver_id, lat, lng, message, created_at}`. */
const open = new Map();
/** Alerts resolved since this page loaded: a late or replayed `emergency_alert` must not reopen. */
const resolved = new Set();
let rest = null;
let changed = () => {};
let nameOf = () => null;
let audio = null;
const title = document.title;

/** `restCall(method, path)` is the page's REST helper; `onChange()` redraws what depends on it;
 *  `driverName(id)` the driver's name when the page knows it. */
export function setup(restCall, onChange, driverName) {
  rest = restCall;
  changed = onChange;
  nameOf = driverName;
  window.sosCues = 0; // For the browser tests: how many times the cue sounded.
}

/** Replaces the open alerts with `list` (the `GET /api/v1/sos?open=true` answer). */
export function load(list) {
  const before = new Set(open.keys());
  open.clear();
  for (const a of list) if (!a.resolved_at && !resolved.has(a.alert_id)) open.set(a.alert_id, a);
  if ([...open.keys()].some((id) => !before.has(id))) cue();
  render();
}

/** An `emergency_alert`. */
export function raised(m) {
  if (open.has(m.alert_id) || resolved.has(m.alert_id)) return;
  open.set(m.alert_id, {
    alert_id: m.alert_id, driver_id: m.driver_id, lat: m.lat, lng: m.lng,
    message: m.message, created_at: m.timestamp,
  });
  cue();
  render();
}

/** An `emergency_alert_resolved`, or this page's own resolve. */
export function cleared(id) {
  resolved.add(id);
  if (open.delete(id)) render();
}

/** The open alerts' positions, for the map to fit them. */
export function points() {
  return [...open.values()].map((a) => ({ lat: a.lat, lng: a.lng }));
}

/** The map's markers, on the plane `at`. */
export function mapLayer(at) {
  const layer = svg('g', { class: 'sos-layer' });
  for (const a of open.values()) {
    const [x, y] = at(a);
    const g = svg('g', { transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})`, class: 'sos-marker', 'data-alert': a.alert_id });
    g.append(svg('circle', { r: 26, class: 'sos-pulse' }));
    g.append(titled(svg('circle', { r: 15, class: 'sos-dot' }), `SOS from ${a.driver_id}${a.message ? `: ${a.message}` : ''}`));
    g.append(svg('text', { y: 5, 'text-anchor': 'middle', class: 'sos-text' }, 'SOS'));
    g.append(svg('text', { x: 30, y: -14, class: 'label sos-label' }, `SOS ${a.driver_id}`));
    layer.append(g);
  }
  return layer;
}

function render() {
  const list = [...open.values()].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
  $('#sos-banner').hidden = list.length === 0;
  $('#sos-count').textContent = list.length === 1 ? 'SOS: a driver needs help' : `SOS: ${list.length} drivers need help`;
  document.title = list.length ? `(${list.length}) SOS — ${title}` : title;
  const ul = $('#sos-list');
  ul.replaceChildren(...list.map(item));
  changed();
}

function item(a) {
  const error = el('span', { class: 'error', role: 'alert' });
  const button = el('button', {
    type: 'button', class: 'sos-resolve', text: 'Resolve', 'aria-label': `Resolve the SOS of ${a.driver_id}`,
  });
  button.addEventListener('click', async () => {
    button.disabled = true;
    error.textContent = '';
    try {
      await rest('POST', `/api/v1/sos/${encodeURIComponent(a.alert_id)}/resolve`);
      cleared(a.alert_id);
    } catch (e) {
      // Another dispatcher was quicker: it is resolved all the same.
      if (e.code === 'conflict' || e.code === 'http_409') cleared(a.alert_id);
      else error.textContent = `Could not resolve: ${e.message}`;
      button.disabled = false;
    }
  });
  const name = nameOf(a.driver_id);
  return el('li', { class: 'sos-item', dataset: { alert: a.alert_id, driver: a.driver_id } },
    el('p', { class: 'sos-head' }, el('strong', { text: `SOS from ${a.driver_id}${name ? ` (${name})` : ''}` }),
      ` · ${place(a)} · `, el('time', { datetime: a.created_at, text: clock(a.created_at) })),
    a.message ? el('p', { class: 'sos-message', text: `“${a.message}”` }) : el('p', { class: 'muted', text: 'No message.' }),
    el('p', { class: 'row' }, button, error));
}

/** A short two-tone alarm (where the browser lets the page play sound) and the flashing banner. */
function cue() {
  window.sosCues += 1;
  const banner = $('#sos-banner');
  banner.classList.remove('flash');
  void banner.offsetWidth; // Restarts the animation.
  banner.classList.add('flash');
  try {
    audio = audio || new AudioContext();
    const t = audio.currentTime;
    for (const [i, f] of [880, 660, 880, 660].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = f;
      gain.gain.setValueAtTime(0.2, t + i * 0.25);
      gain.gain.setValueAtTime(0, t + i * 0.25 + 0.22);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + i * 0.25);
      osc.stop(t + i * 0.25 + 0.24);
    }
  } catch {
    // No sound here: the banner, the map and the title say it.
  }
}
