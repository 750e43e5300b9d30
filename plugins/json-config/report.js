// report.js: how json-config's changes read in plans, logs, outputs and
// errors, with secret-looking values masked. Pure: no I/O.

import { count } from './backout-sdk.js';
import { parsePointer } from './jsonedit.js';

/** What a masked value reads as. */
export const MASK = '***';

/** Words in a key that mark its value as secret (any case), as env-toggle has them. */
const SECRET_WORDS = ['SECRET', 'TOKEN', 'PASSWORD', 'PASSWD', 'PASS', 'KEY', 'CREDENTIAL', 'PRIVATE', 'AUTH', 'SALT', 'DSN', 'CERT'];

/** Whether a key's name looks secret. Broad on purpose: masking a harmless value costs little. */
export function isSecretKey(key) {
  const upper = String(key).toUpperCase();
  return SECRET_WORDS.some((w) => upper.includes(w));
}

/** Whether a string holds a URL with a password (`scheme://user:pass@host`). */
export function hasUrlCredentials(value) {
  let i = value.indexOf('://');
  while (i !== -1) {
    const authority = value.slice(i + 3).split(/[/?#]/)[0];
    const at = authority.lastIndexOf('@');
    if (at !== -1 && authority.slice(0, at).includes(':')) return true;
    i = value.indexOf('://', i + 3);
  }
  return false;
}

/** Whether a JSON value holds a secret-looking key or a URL with a password anywhere inside. */
function holdsSecret(value) {
  if (typeof value === 'string') return hasUrlCredentials(value);
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(holdsSecret);
  return Object.entries(value).some(([k, v]) => isSecretKey(k) || holdsSecret(v));
}

/**
 * Whether a change's values are masked: a token of its pointer looks secret
 * (`/database/password`, `/auth/enabled`), or either value holds a
 * secret-looking key or a URL with a password.
 */
export function masks(change) {
  return parsePointer(change.pointer).some(isSecretKey) || holdsSecret(change.old) || holdsSecret(change.new);
}

/** A JSON value for people: its JSON text on one line, shortened past 80 characters. */
export function show(value) {
  if (value === undefined) return 'absent';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

function shown(value, masked) {
  return masked && value !== undefined ? MASK : show(value);
}

/** The one-line summary of a change, imperative, as a plan action. */
export function actionSummary(change, file) {
  const p = change.pointer;
  switch (change.action) {
    case 'set':
      return `set ${p} in ${file}`;
    case 'created':
      return p.endsWith('/-') ? `append to ${p.slice(0, -2) || '/'} in ${file}` : `add ${p} to ${file}`;
    case 'removed':
      return `remove ${p} from ${file}`;
    default:
      return change.new === undefined ? `leave ${p} absent from ${file}` : `leave ${p} as it is in ${file}`;
  }
}

/** The detail under a plan action: `line N: old → new`, and what is created or already holds. */
export function actionDetail(change) {
  const masked = masks(change);
  switch (change.action) {
    case 'set':
      return `line ${change.line}: ${shown(change.old, masked)} → ${shown(change.new, masked)}`;
    case 'created': {
      if (change.index !== undefined) return `new element ${change.index}: ${shown(change.new, masked)}`;
      const creates = change.creates ? ` (creates ${change.creates})` : '';
      return `absent → ${shown(change.new, masked)}${creates}`;
    }
    case 'removed':
      return `line ${change.line}: remove (was ${shown(change.old, masked)})`;
    default:
      if (change.new === undefined) return 'already absent';
      return masked ? 'already has the requested value (hidden)' : `already ${show(change.new)}`;
  }
}

/** A log line for a change `run` made. */
export function logLine(change, file) {
  return `${actionSummary(change, file)}: ${actionDetail(change)}`;
}

/**
 * A change as recorded in the outputs: `pointer`, `action` (`set`, `created`,
 * `removed`, `unchanged`), `old` and `new` (JSON values; `null` when absent —
 * `action` tells absent from a JSON null; `***` when masked), `line` (where
 * the old value started; `null` when absent), `at` (where the value is after
 * the run, when that differs from `pointer`: an append, or indexes shifted by
 * a removed element), and `array_element: true` for a removed array element
 * (its pointer names the next element afterwards, so `verify` confirms its
 * removal by the file's digest).
 */
export function record(change) {
  const masked = masks(change);
  const value = (v) => (v === undefined ? null : masked ? MASK : v);
  const out = { pointer: change.pointer, action: change.action, old: value(change.old), new: value(change.new), line: change.line };
  if (change.at !== change.pointer && change.action !== 'removed') out.at = change.at;
  if (change.action === 'removed' && change.arrayElement) out.array_element = true;
  return out;
}

/** The summary of a run: how many values changed, and where the safety copy is. */
export function runSummary(changes, file, safetyCopy) {
  if (safetyCopy === null) return `no change needed: ${file} already has the requested values; nothing was written`;
  const changed = changes.filter((c) => c.action !== 'unchanged').length;
  const unchanged = changes.length - changed;
  const already = unchanged > 0 ? `, ${unchanged} already as requested` : '';
  return `changed ${count(changed, 'value')} in ${file}${already} (safety copy ${safetyCopy})`;
}
