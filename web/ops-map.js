// The operator page's density map (SPEC 8): a canvas with the event's zones drawn from their
// bounds (red while a zone has an open alert), the density cells shaded by how many devices each
// holds, and the latest batch's points. What it draws is also written on the canvas's data
// attributes and in the zone list beside it, for screen readers and the browser tests.

const COLOURS = {
  background: '#0d1117',
  grid: '#1f2937',
  zone: '#4ea1ff',
  zoneFill: 'rgba(78, 161, 255, 0.10)',
  alert: '#ff5c5c',
  alertFill: 'rgba(255, 92, 92, 0.22)',
  cell: [255, 176, 32],
  point: '#e6edf3',
  label: '#e6edf3',
};

/** Metres per degree of latitude. */
const M_PER_DEG = 111320;

/** The area to show: the zones' bounds, or the cells' and points' when no zone has any. */
function extent(zones, map) {
  let [s, w, n, e] = [Infinity, Infinity, -Infinity, -Infinity];
  const take = (lat, lng) => {
    s = Math.min(s, lat); n = Math.max(n, lat); w = Math.min(w, lng); e = Math.max(e, lng);
  };
  for (const z of zones) {
    if (!z.bounds) continue;
    take(z.bounds.south, z.bounds.west);
    take(z.bounds.north, z.bounds.east);
  }
  if (!Number.isFinite(s)) {
    for (const p of [...(map.density || []), ...(map.points || [])]) take(p.lat, p.lng);
  }
  if (!Number.isFinite(s)) return null;
  const padLat = Math.max((n - s) * 0.08, 0.0002);
  const padLng = Math.max((e - w) * 0.08, 0.0002);
  return { south: s - padLat, north: n + padLat, west: w - padLng, east: e + padLng };
}

/** `at({lat, lng})` → `[x, y]` on a `width` × `height` canvas showing `box`, north up, with
 *  longitude shrunk by the cosine of the middle latitude so that distances look right. */
function projection(box, width, height) {
  const k = Math.cos((((box.south + box.north) / 2) * Math.PI) / 180);
  const spanX = (box.east - box.west) * k;
  const spanY = box.north - box.south;
  const scale = Math.min(width / spanX, height / spanY);
  const ox = (width - spanX * scale) / 2;
  const oy = (height - spanY * scale) / 2;
  const at = (p) => [ox + (p.lng - box.west) * k * scale, oy + (box.north - p.lat) * scale];
  return { at, pxPerDegLat: scale };
}

/** The density grid's cell side in degrees of latitude: the smallest gap between cell rows,
 *  else `fallbackM` metres. */
function cellSide(density, fallbackM) {
  const lats = [...new Set(density.map((c) => c.lat))].sort((a, b) => a - b);
  let side = Infinity;
  for (let i = 1; i < lats.length; i++) side = Math.min(side, lats[i] - lats[i - 1]);
  return Number.isFinite(side) && side > 0 ? side : fallbackM / M_PER_DEG;
}

/**
 * Draws the map on `canvas`. `zones`: the event's zones; `alerting`: the ids of zones with an
 * open alert; `map`: the latest `map:update` (or the snapshot).
 */
export function drawMap(canvas, zones, alerting, map, { cellM = 25 } = {}) {
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  const density = map.density || [];
  const points = map.points || [];
  ctx.fillStyle = COLOURS.background;
  ctx.fillRect(0, 0, width, height);
  const box = extent(zones, map);
  canvas.dataset.points = String(points.length);
  canvas.dataset.cells = String(density.length);
  canvas.dataset.devices = String(density.reduce((s, c) => s + (c.count || 0), 0));
  canvas.dataset.source = map.source || '';
  canvas.dataset.updatedAt = map.updatedAt || '';
  canvas.dataset.alerting = [...alerting].sort().join(' ');
  if (!box) return;
  const { at, pxPerDegLat } = projection(box, width, height);

  // The cells, shaded against the fullest one.
  const side = cellSide(density, cellM);
  const max = density.reduce((m, c) => Math.max(m, c.count || 0), 1);
  const half = Math.max((side * pxPerDegLat) / 2, 2);
  for (const c of density) {
    const [x, y] = at(c);
    const a = 0.2 + 0.7 * ((c.count || 0) / max);
    ctx.fillStyle = `rgba(${COLOURS.cell.join(', ')}, ${a.toFixed(2)})`;
    ctx.fillRect(x - half, y - half, half * 2, half * 2);
  }

  // The zones, red while alerting, with their names.
  ctx.font = `${Math.round(height / 32)}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  for (const z of zones) {
    if (!z.bounds) continue;
    const [x1, y1] = at({ lat: z.bounds.north, lng: z.bounds.west });
    const [x2, y2] = at({ lat: z.bounds.south, lng: z.bounds.east });
    const hot = alerting.has(z.id);
    ctx.fillStyle = hot ? COLOURS.alertFill : COLOURS.zoneFill;
    ctx.fillRect(x1, y1, x2 - x1, y2 - y1);
    ctx.lineWidth = hot ? 5 : 2;
    ctx.strokeStyle = hot ? COLOURS.alert : COLOURS.zone;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.fillStyle = hot ? COLOURS.alert : COLOURS.label;
    ctx.fillText(`${z.name} · ${z.count ?? 0}/${z.capacity}`, x1 + 8, y1 + 6);
  }

  // The latest batch's devices.
  ctx.fillStyle = COLOURS.point;
  for (const p of points) {
    const [x, y] = at(p);
    ctx.beginPath();
    ctx.arc(x, y, 2.5, 0, Math.PI * 2);
    ctx.fill();
  }
}
