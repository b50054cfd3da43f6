// The emergency pages' words (SPEC 9): the protocol's values as people read them, and the small
// helpers the three pages share (the toasts).

import { $, el, clock } from '/assets/common.js';

/** Emergency types, in the order the report form offers them. */
export const TYPES = [
  ['medical', 'Medical'],
  ['fire', 'Fire'],
  ['accident', 'Accident'],
  ['police', 'Police'],
  ['hazmat', 'Hazardous materials'],
  ['rescue', 'Rescue'],
  ['other', 'Other'],
];

export const SEVERITIES = [
  ['low', 'Low'],
  ['medium', 'Medium'],
  ['high', 'High'],
  ['critical', 'Critical: life in danger'],
];

export const STATUS_WORDS = {
  PENDING: 'Waiting for a unit',
  ASSIGNED: 'Unit on the way',
  COMPLETED: 'Completed',
  CANCELLED: 'Cancelled',
};

export const UNIT_WORDS = {
  AVAILABLE: 'Available',
  DISPATCHED: 'Dispatched',
  OFFLINE: 'Offline',
};

export const UNIT_TYPES = {
  ambulance: 'Ambulance',
  fire: 'Fire engine',
  police: 'Police',
  rescue: 'Rescue',
};

const typeWord = Object.fromEntries(TYPES);
const severityWord = Object.fromEntries(SEVERITIES.map(([v, w]) => [v, w.split(':')[0]]));

export function typeLabel(t) {
  return typeWord[t] || t;
}

export function severityLabel(s) {
  return severityWord[s] || s;
}

/** `Medical · High` */
export function headline(e) {
  return `${typeLabel(e.type)} · ${severityLabel(e.severity)}`;
}

/** A short id for people: `EMG-4f3a2b1c…` shows as `EMG-4f3a2b`. */
export function shortId(id) {
  return String(id).slice(0, 10);
}

/** A badge for an emergency's or a unit's status. */
export function badge(status, words) {
  return el('span', { class: `badge st-${String(status).toLowerCase()}`, text: words[status] || status });
}

/**
 * A toast in `#toasts` (an `aria-live` list): newest first, the last 6 kept, each gone after a
 * minute or on its Dismiss button. `kind` is `created`, `assigned`, `completed`, `cancelled` or
 * `error`.
 */
export function toast(kind, title, text) {
  const list = $('#toasts');
  if (!list) return null;
  const close = el('button', { type: 'button', class: 'link toast-close', text: 'Dismiss', 'aria-label': `Dismiss: ${title}` });
  const item = el('li', { class: `toast toast-${kind}`, dataset: { kind } },
    el('strong', { class: 'toast-title', text: title }),
    text ? el('span', { class: 'toast-text', text }) : null,
    el('time', { class: 'toast-time', text: clock(new Date().toISOString()) }),
    close);
  close.addEventListener('click', () => item.remove());
  list.prepend(item);
  while (list.children.length > 6) list.lastElementChild.remove();
  setTimeout(() => item.remove(), 60000);
  return item;
}
