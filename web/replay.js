// Route replay on the dispatcher dashboard: a driver's positions of the last hour, as the engine
// kept them (GET /api/v1/drivers/{id}/track, one per tracking.sample_s), drawn on the live map as
// a line and played back by a marker, with its time in the status line. One replay at a time.

import { $, el, svg, titled, clock } from '/assets/common.js';

/** How long a whole replay takes, however many positions it has. */
const REPLAY_MS = 8000;

let rest = null;
let redraw = () => {};
/** `{ driverId, points, index, timer }` while a replay shows. */
let current = null;

/** `restCall(method, path)` answers the JSON body; `onChange` redraws the map. */
export function setup(restCall, onChange) {
  rest = restCall;
  redraw = onChange;
  $('#replay-stop').addEventListener('click', () => {
    stop();
    say('Replay stopped.');
  });
}

function say(text) {
  $('#replay-status').textContent = text;
}

/** The button of a driver's row. */
export function button(driverId) {
  const b = el('button', {
    type: 'button',
    class: 'replay',
    text: 'Replay',
    'aria-label': `Replay the last hour of ${driverId}'s route`,
  });
  b.addEventListener('click', () => play(driverId, b));
  return b;
}

async function play(driverId, button) {
  stop();
  say(`Loading ${driverId}'s last hour…`);
  button.disabled = true;
  let track;
  try {
    const since = new Date(Date.now() - 3600 * 1000).toISOString();
    track = await rest('GET',
      `/api/v1/drivers/${encodeURIComponent(driverId)}/track?since=${encodeURIComponent(since)}`);
  } catch (e) {
    say(`The route of ${driverId} could not be read: ${e.message}`);
    return;
  } finally {
    button.disabled = false;
  }
  const points = track.points || [];
  if (!points.length) {
    say(`No positions of ${driverId} were kept in the last hour.`);
    return;
  }
  current = { driverId, points, index: 0, timer: null };
  const first = clock(points[0].timestamp);
  const last = clock(points[points.length - 1].timestamp);
  say(`Replaying ${driverId}: ${points.length} positions from ${first} to ${last}.`);
  $('#replay-stop').hidden = false;
  const step = Math.max(40, Math.floor(REPLAY_MS / points.length));
  current.timer = setInterval(() => {
    if (!current) return;
    if (current.index >= current.points.length - 1) {
      clearInterval(current.timer);
      current.timer = null;
      say(`Replayed ${driverId}: ${points.length} positions from ${first} to ${last}.`);
      return;
    }
    current.index += 1;
    redraw();
  }, step);
  redraw();
}

/** Ends the replay shown, if any, and takes it off the map. */
export function stop() {
  if (!current) return;
  if (current.timer) clearInterval(current.timer);
  current = null;
  $('#replay-stop').hidden = true;
  redraw();
}

/** The positions the map must fit. */
export function points() {
  return current ? current.points : [];
}

/** The replay's line and marker on the map's plane `at`. */
export function mapLayer(at) {
  const layer = svg('g', { class: 'replay-layer' });
  if (!current) return layer;
  const line = current.points.map((p) => at(p).map((v) => v.toFixed(1)).join(',')).join(' ');
  layer.append(svg('polyline', { points: line, class: 'replay-path', 'data-driver': current.driverId }));
  const p = current.points[current.index];
  const [x, y] = at(p);
  layer.append(titled(svg('circle', {
    cx: x.toFixed(1), cy: y.toFixed(1), r: 9, class: 'replay-marker', 'data-index': current.index,
  }), `${current.driverId} at ${clock(p.timestamp)}`));
  return layer;
}
