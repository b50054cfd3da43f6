// What the emergency pages know (SPEC 9): the emergencies and the units, loaded over REST and
// kept current by the socket's messages. Shared by the dashboard and the units map, so both
// decide alike what is newer and what a unit's status is.
//
// A unit's status is derived, not copied: DISPATCHED while an emergency this page holds is
// ASSIGNED to it, else AVAILABLE when it is online, else OFFLINE. So a late or replayed message
// cannot leave a unit DISPATCHED to an emergency that is over.

/** request_id → the emergency. */
export const emergencies = new Map();
/** unit_id → `{unit_id, name, fleet, unit_type, online, location, emergency_id}`. */
export const units = new Map();

const RANK = { PENDING: 0, ASSIGNED: 1, COMPLETED: 2, CANCELLED: 2 };
export const OPEN = new Set(['PENDING', 'ASSIGNED']);

function time(ts) {
  const t = Date.parse(ts);
  return Number.isNaN(t) ? 0 : t;
}

/** Takes a view of an emergency unless the one held is further on; true when taken. */
export function putEmergency(e) {
  if (!e || !e.request_id) return false;
  const known = emergencies.get(e.request_id);
  if (known && (RANK[known.status] > RANK[e.status] || time(known.updated_at) > time(e.updated_at))) {
    return false;
  }
  emergencies.set(e.request_id, { ...known, ...e });
  return true;
}

/** Takes a unit object (`GET /api/v1/units`, `data.unit` of `emergency_updated`). */
export function putUnit(u) {
  if (!u || !u.unit_id) return;
  const known = units.get(u.unit_id) || {};
  const online = u.status === 'OFFLINE' ? false : u.status === 'AVAILABLE' ? true : known.online ?? true;
  units.set(u.unit_id, {
    ...known,
    ...u,
    online,
    location: u.location || known.location || null,
    emergency_id: u.status === 'DISPATCHED' ? u.emergency_id : null,
  });
}

/** The emergency `id` is on, by the emergencies held (or its own word, for one not held). */
export function unitEmergency(id) {
  for (const e of emergencies.values()) {
    if (e.status === 'ASSIGNED' && e.unit_id === id) return e.request_id;
  }
  const u = units.get(id);
  return u && u.emergency_id && !emergencies.has(u.emergency_id) ? u.emergency_id : null;
}

export function unitStatus(id) {
  if (unitEmergency(id)) return 'DISPATCHED';
  return units.get(id)?.online ? 'AVAILABLE' : 'OFFLINE';
}

/** Emergencies newest first, the open ones before the finished. */
export function sortedEmergencies() {
  return [...emergencies.values()].sort((a, b) =>
    Number(OPEN.has(b.status)) - Number(OPEN.has(a.status)) || time(b.created_at) - time(a.created_at));
}

export function sortedUnits() {
  return [...units.values()].sort((a, b) => a.unit_id.localeCompare(b.unit_id));
}

/** Loads the emergencies (the newest 200) and, for staff, the units. */
export async function load(rp, { withUnits = true } = {}) {
  const [es, us] = await Promise.all([
    rp.rest('GET', '/api/v1/emergencies?limit=200'),
    withUnits ? rp.rest('GET', '/api/v1/units') : Promise.resolve([]),
  ]);
  for (const e of es) putEmergency(e);
  for (const u of us) putUnit(u);
}

/**
 * Follows the emergency messages on `rp`. `hooks.created(e)`, `hooks.updated(action, e, unit)`
 * are told of news (for toasts); `changed()` after every change, to redraw.
 */
export function follow(rp, changed, hooks = {}) {
  const onCreated = (e) => {
    const fresh = !emergencies.has(e.request_id);
    if (putEmergency(e) && fresh && hooks.created) hooks.created(emergencies.get(e.request_id));
    changed();
  };
  rp.on('emergency_created', (m) => onCreated(m.data || {}));
  rp.on('emergency_update', (m) => onCreated((m.data || {}).emergency || {}));
  rp.on('emergency_updated', (m) => {
    const d = m.data || {};
    const taken = putEmergency(d.emergency);
    if (d.unit) putUnit(d.unit);
    if (taken && hooks.updated) hooks.updated(d.action, emergencies.get(d.emergency.request_id), d.unit);
    changed();
  });
  rp.on('unit_status_update', (m) => {
    const d = m.data || {};
    if (!d.unit_id) return;
    const u = units.get(d.unit_id) || { unit_id: d.unit_id, name: d.unit_id, location: null };
    if (d.status === 'AVAILABLE') u.online = true;
    if (d.status === 'OFFLINE') u.online = false;
    u.emergency_id = d.status === 'DISPATCHED' ? d.emergency_id : null;
    units.set(d.unit_id, u);
    changed();
  });
  rp.on('driver_status', (m) => {
    const u = units.get(m.driver_id);
    if (!u) return;
    u.online = m.status !== 'offline';
    changed();
  });
  rp.on('locations', (m) => {
    let moved = false;
    for (const l of m.drivers || []) {
      const u = units.get(l.driver_id);
      if (!u) continue;
      u.location = { lat: l.lat, lng: l.lng, speed: l.speed, heading: l.heading, timestamp: l.timestamp };
      moved = true;
    }
    if (moved) changed('moved');
  });
}
