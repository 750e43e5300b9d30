// backout-sdk.js: the helpers every backout plugin written in JavaScript
// needs, in one ES module that is bundled into the plugin's component.
//
// - `defineStep` turns plain functions into the `step` export of
//   `backout:step@0.2.0`: it parses config and outputs, maps every thrown error
//   to a `step-error` variant (an uncaught plain Error would otherwise trap the
//   component), and serializes outputs.
// - `parseConfig` checks a config against the top level of its JSON Schema:
//   unknown keys, missing keys and wrong types are `invalid-config` errors that
//   name the key, all reported at once.
// - `log` and `progress` call the host; `sha256Hex` uses the engine's native
//   `crypto.subtle` (fast even for large files).
// - `checkpoint` records the outputs in the run's journal before the first
//   change a crash could leave behind, so that `verify` and `undo` can finish
//   the job if backout is killed (see wit/step.wit); `fs.temporaryFile`
//   declares a file written under a temporary name, so the host removes it
//   if the call never returns.
// - `fs` does safe file I/O over `wasi:filesystem` (StarlingMonkey has no Node
//   `fs`): read, write, stat, a safety copy before anything is replaced, an
//   atomic replace (temp file in the same directory, the replaced file's
//   permissions and owner through the host's `copy-permissions`, write, sync,
//   rename, sync the directory). Both declare their temporary files first,
//   give them the original's permissions while they are still empty (a copy
//   of a 0600 file is never readable by others, not even while it is
//   written), and a safety copy takes its `.bak` name only when complete. A
//   brand-new file (an atomic replace where no file is) has nothing to take
//   permissions from and keeps the host's default mode (0666 less backout's
//   umask) from creation on: the mode it ends with anyway. Paths are absolute guest
//   paths (`/app/config.json`), resolved against the directory grant that
//   contains them.
//
// Code at the top level of a module runs once, at build time (componentize-js
// snapshots the initialized engine): nothing here calls the host or reads the
// clock outside a function.

import {
  log as hostLog,
  progress as hostProgress,
  copyPermissions as hostCopyPermissions,
  checkpoint as hostCheckpoint,
  temporaryFile as hostTemporaryFile,
} from 'backout:step/host@0.2.0';
import { copyFile as hostCopyFile, sha256File as hostSha256File } from 'backout:step/files@0.2.0';
import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import { now as wallClockNow } from 'wasi:clocks/wall-clock@0.2.12';

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** The `step-error` variants of `wit/step.wit`, as componentize-js names them. */
export const ERROR_KINDS = Object.freeze(['invalid-config', 'precondition', 'transient', 'failed']);

// What an action does to the world (`effect` in wit/step.wit): `change` (the
// default: say otherwise only when the plan proved it), `check` (run only
// looks), `in-place` (already as requested). When no action of a plan is a
// change, `backout run` says the rollback is in place and runs nothing.
export const EFFECTS = Object.freeze(['change', 'check', 'in-place']);

// An action's effect as the host takes it: missing is a change, anything
// outside `EFFECTS` is the plugin's bug, reported as `failed`.
export function effectOf(effect) {
  if (effect == null) return 'change';
  if (!EFFECTS.includes(effect)) {
    throw failed(`plan returned an action with the effect ${JSON.stringify(effect)}; use one of ${EFFECTS.join(', ')}`);
  }
  return effect;
}

/**
 * An error that reaches the host as a `step-error`. Throw it from any step
 * function; `kind` is one of {@link ERROR_KINDS}.
 *
 * Any thrown object with a `kind` property naming a variant is mapped the same
 * way, so modules of pure logic can define their own error class without
 * importing this module.
 */
export class StepError extends Error {
  /**
   * `options.pointer`: for `invalid-config`, the JSON pointer of the offending
   * key in the `with` table (`'/checks/1/url'`), so the host shows the error
   * at that key's line in the runbook. `options.problems`: several problems,
   * `[{ pointer?, message }]`, each shown at its own key (`message` is then
   * their words joined, for people and logs).
   */
  constructor(kind, message, options = {}) {
    if (!ERROR_KINDS.includes(kind)) {
      throw new TypeError(`unknown step-error kind \`${kind}\`; use one of ${ERROR_KINDS.join(', ')}`);
    }
    super(message);
    this.name = 'StepError';
    this.kind = kind;
    if (options.pointer) this.pointer = options.pointer;
    if (options.problems) this.problems = options.problems;
  }
}

/**
 * The config is wrong: a missing field, a bad value, an unknown key. With
 * `pointer` (`'/checks/1/url'`) the host shows it at that key; the message
 * names the key in words too.
 */
export const invalidConfig = (message, pointer) => new StepError('invalid-config', message, { pointer });

/** Bytes a pointer keeps in its URI-fragment form (RFC 3986), the rest as `%XX`. */
const FRAGMENT_SAFE = /[A-Za-z0-9\-._~!$&'()*+,;=:@/]/;

/** A JSON pointer in the URI-fragment form `wit/step.wit` uses in `invalid-config`. */
function fragment(pointer) {
  let out = '#';
  for (const byte of new TextEncoder().encode(pointer)) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && FRAGMENT_SAFE.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * The `invalid-config` text for problems `[{ pointer?, message }]`: those
 * naming no key first, then each keyed one as `` `#/a/b`: words ``, joined
 * with `; ` (the convention of `wit/step.wit`).
 */
export function encodeProblems(problems) {
  const plain = problems.filter((p) => !p.pointer).map((p) => p.message);
  const keyed = problems.filter((p) => p.pointer).map((p) => `\`${fragment(p.pointer)}\`: ${p.message}`);
  return [...plain, ...keyed].join('; ');
}

/** The JSON pointer token for `key`: `~` as `~0`, `/` as `~1`. */
const token = (key) => String(key).replaceAll('~', '~0').replaceAll('/', '~1');
/** The world is not as the step needs; nothing was changed. */
export const precondition = (message) => new StepError('precondition', message);
/** A temporary problem; trying again later may work. */
export const transient = (message) => new StepError('transient', message);
/** The step failed; the message says what, if anything, was changed. */
export const failed = (message) => new StepError('failed', message);

/**
 * The `step-error` value for anything thrown: `{ tag, val }` as
 * componentize-js lowers a WIT variant. A `StepError` (or any object with a
 * known `kind`) keeps its kind; anything else is `failed`, with its message.
 */
export function toStepError(error) {
  if (error !== null && typeof error === 'object' && ERROR_KINDS.includes(error.kind)) {
    if (error.kind === 'invalid-config' && Array.isArray(error.problems)) {
      return { tag: error.kind, val: encodeProblems(error.problems) };
    }
    if (error.kind === 'invalid-config' && error.pointer) {
      return { tag: error.kind, val: encodeProblems([{ pointer: error.pointer, message: String(error.message) }]) };
    }
    return { tag: error.kind, val: String(error.message) };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { tag: 'failed', val: `unexpected error in the plugin: ${message}` };
}

// ---------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------

/** The host's log, one function per level. Never log secrets. */
export const log = Object.freeze({
  trace: (message) => hostLog('trace', String(message)),
  debug: (message) => hostLog('debug', String(message)),
  info: (message) => hostLog('info', String(message)),
  warn: (message) => hostLog('warn', String(message)),
  error: (message) => hostLog('error', String(message)),
});

/** Reports progress of a long operation: `done` of `total` (or null) `unit`s. */
export function progress(done, total, unit) {
  hostProgress(BigInt(done), total === null || total === undefined ? undefined : BigInt(total), unit);
}

// ---------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------

/** The host refuses larger checkpoints; so does this helper, before calling it. */
export const MAX_CHECKPOINT_BYTES = 1024 * 1024;

/** The reason in a `result<_, string>` error that componentize-js threw. */
function hostReason(e) {
  return e !== null && typeof e === 'object' && 'payload' in e ? String(e.payload) : String(e?.message ?? e);
}

/**
 * Records `outputs` (a plain object: what `run` would return, filled in as it
 * would return it) in the run's journal, durably, before the step's first
 * change that a crash could leave behind. Call it from `run` only, once the
 * safety copy is taken and before the atomic replace. If backout dies after
 * that, `verify` and `undo` get these outputs: `verify` must fail if the
 * change is not in place, and `undo` must succeed without changing anything
 * when there is nothing to put back.
 *
 * Throws a `failed` StepError when the record is not durable: the step must
 * then change nothing (remove its safety copy) and let the error through.
 */
export function checkpoint(outputs) {
  const refused = (why) => failed(`cannot record a checkpoint before changing anything: ${why}; nothing was changed`);
  if (!matchesType(outputs, 'object')) throw refused(`the outputs must be a plain object, not ${kindOf(outputs)}`);
  const json = JSON.stringify(outputs);
  const size = utf8Encode(json).length;
  if (size > MAX_CHECKPOINT_BYTES) {
    throw refused(`the outputs are ${size} bytes, more than the ${MAX_CHECKPOINT_BYTES} allowed`);
  }
  try {
    hostCheckpoint(json);
  } catch (e) {
    throw refused(hostReason(e));
  }
}

// ---------------------------------------------------------------------------
// Words
// ---------------------------------------------------------------------------

/**
 * `n` and the noun, plural unless `n` is 1: `count(1, 'key')` is `'1 key'`,
 * `count(2, 'entry')` is `'2 entries'`, `count(0, 'match')` is `'0 matches'`.
 * The rules of the host's `backout::text::count`; regular plurals only.
 */
export function count(n, noun) {
  return `${n} ${n === 1 ? noun : plural(noun)}`;
}

/** The plural of an English noun by the regular rules: `entry` → `entries`, `key` → `keys`. */
export function plural(noun) {
  if (/[^aeiou]y$/.test(noun)) return `${noun.slice(0, -1)}ies`;
  if (/(s|x|z|ch|sh)$/.test(noun)) return `${noun}es`;
  return `${noun}s`;
}

// ---------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------

/** How a JSON value reads in an error message: `a string`, `a boolean`, … */
export function kindOf(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'boolean':
      return 'a boolean';
    case 'number':
      return Number.isInteger(value) ? 'an integer' : 'a number';
    case 'object':
      return 'a table';
    default:
      return typeof value;
  }
}

function matchesType(value, type) {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return value !== null && typeof value === 'object' && !Array.isArray(value);
    case 'null':
      return value === null;
    default:
      return true;
  }
}

const TYPE_NAMES = {
  string: 'a string',
  boolean: 'a boolean',
  integer: 'an integer',
  number: 'a number',
  array: 'an array',
  object: 'a table',
  null: 'null',
};

/**
 * Parses config JSON and checks it against the top level of `schema` (a JSON
 * Schema object): it must be an object; with `additionalProperties: false`
 * every key must be in `properties`; every `required` key must be there; each
 * property must have its `type`. Properties that are absent get their
 * `default` (a copy). Deeper rules are the plugin's own to check.
 *
 * Throws an `invalid-config` StepError naming every problem at once, each
 * with the JSON pointer of its key (`problems`), so the host shows it there.
 */
export function parseConfig(text, schema) {
  let config;
  try {
    config = typeof text === 'string' ? JSON.parse(text) : text;
  } catch (e) {
    throw invalidConfig(`the config is not valid JSON: ${e.message}`);
  }
  if (!matchesType(config, 'object')) {
    throw invalidConfig(`the config must be a table, not ${kindOf(config)}`);
  }
  const properties = schema.properties ?? {};
  const known = Object.keys(properties);
  const problems = [];
  if (schema.additionalProperties === false) {
    for (const key of Object.keys(config)) {
      if (!Object.hasOwn(properties, key)) {
        const expected = known.map((k) => `\`${k}\``).join(', ');
        problems.push({
          pointer: `/${token(key)}`,
          message: `unknown field \`${key}\`, expected ${known.length === 1 ? '' : 'one of '}${expected}`,
        });
      }
    }
  }
  for (const key of schema.required ?? []) {
    if (!Object.hasOwn(config, key)) problems.push({ message: `missing field \`${key}\`` });
  }
  const result = {};
  for (const [key, property] of Object.entries(properties)) {
    if (!Object.hasOwn(config, key)) {
      if (Object.hasOwn(property, 'default')) result[key] = structuredCloneJson(property.default);
      continue;
    }
    const value = config[key];
    const types = property.type === undefined ? [] : [].concat(property.type);
    if (types.length > 0 && !types.some((t) => matchesType(value, t))) {
      const wanted = types.map((t) => TYPE_NAMES[t] ?? t).join(' or ');
      problems.push({ pointer: `/${token(key)}`, message: `\`${key}\` must be ${wanted}, not ${kindOf(value)}` });
      continue;
    }
    result[key] = value;
  }
  for (const key of Object.keys(config)) {
    if (!Object.hasOwn(result, key) && !Object.hasOwn(properties, key)) result[key] = config[key];
  }
  if (problems.length > 0) {
    throw new StepError('invalid-config', problems.map((p) => p.message).join('; '), { problems });
  }
  return result;
}

function structuredCloneJson(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

// ---------------------------------------------------------------------------
// The step export
// ---------------------------------------------------------------------------

/**
 * Builds the object to export as `step`:
 *
 * ```js
 * export const step = defineStep({ name, version, summary, schema, needs, plan, run, verify, undo });
 * ```
 *
 * - `schema`: the config's JSON Schema; `parseConfig` checks each call's config
 *   against it before `plan`, `run`, `verify` or `undo` sees it.
 * - `needs`: `{ files: 'none' | 'read' | 'read-write', env: [names], network: bool }`.
 * - `plan(config)` returns a list of `{ summary, detail? }`.
 * - `run(config)` returns `{ summary, outputs }` (outputs: a plain object).
 * - `verify(config, outputs)` returns nothing; it throws to fail.
 * - `undo(config, outputs)` returns `{ summary, outputs }`.
 *
 * Each may be `async`. Whatever they throw becomes a `step-error` (see
 * {@link toStepError}): an uncaught Error never traps the component.
 */
export function defineStep(step) {
  for (const name of ['name', 'version', 'summary', 'schema', 'plan', 'run', 'verify', 'undo']) {
    if (step[name] === undefined) throw new TypeError(`defineStep: \`${name}\` is missing`);
  }
  const needs = { files: 'none', env: [], network: false, ...(step.needs ?? {}) };
  const configOf = (text) => parseConfig(text, step.schema);
  const outputsOf = (text) => {
    let outputs;
    try {
      outputs = JSON.parse(text);
    } catch (e) {
      throw invalidConfig(`the outputs given back to the step are not valid JSON: ${e.message}`);
    }
    if (!matchesType(outputs, 'object')) {
      throw invalidConfig(`the outputs given back to the step must be a JSON object, not ${kindOf(outputs)}`);
    }
    return outputs;
  };
  const outcome = (value, fn) => {
    if (value === null || typeof value !== 'object' || typeof value.summary !== 'string') {
      throw new TypeError(`${fn} must return { summary, outputs }`);
    }
    const outputs = value.outputs ?? {};
    if (!matchesType(outputs, 'object')) throw new TypeError(`${fn} must return outputs as a plain object`);
    return { summary: value.summary, outputs: JSON.stringify(outputs) };
  };
  // Every function returns an explicit `result`: `{ tag: 'ok', val }` or
  // `{ tag: 'err', val: step-error }`. componentize-js would otherwise lower a
  // thrown value only if it is not an Error (a thrown Error traps), and treat
  // any returned object with a `tag` of `ok`/`err` as a result.
  const guarded = (fn) => async (...args) => {
    try {
      return { tag: 'ok', val: await fn(...args) };
    } catch (e) {
      return { tag: 'err', val: toStepError(e) };
    }
  };
  return {
    describe() {
      return {
        name: step.name,
        version: step.version,
        summary: step.summary,
        configSchema: JSON.stringify(step.schema),
        needs: { files: needs.files, env: [...needs.env], network: Boolean(needs.network) },
      };
    },
    plan: guarded(async (config) => {
      const actions = await step.plan(configOf(config));
      return actions.map((a) => ({
        summary: String(a.summary),
        detail: a.detail == null ? undefined : String(a.detail),
        effect: effectOf(a.effect),
      }));
    }),
    run: guarded(async (config) => outcome(await step.run(configOf(config)), 'run')),
    verify: guarded(async (config, outputs) => {
      await step.verify(configOf(config), outputsOf(outputs));
      return undefined;
    }),
    undo: guarded(async (config, outputs) => outcome(await step.undo(configOf(config), outputsOf(outputs)), 'undo')),
  };
}

// ---------------------------------------------------------------------------
// Bytes, text, digests, time
// ---------------------------------------------------------------------------

const encoder = new TextEncoder();

/** UTF-8 bytes of a string. */
export function utf8Encode(text) {
  return encoder.encode(text);
}

/**
 * The string in UTF-8 `bytes`; throws a TypeError if they are not valid UTF-8.
 * (A leading byte order mark is kept as U+FEFF.)
 */
export function utf8Decode(bytes) {
  return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
}

/** Lowercase hex sha256 of bytes (or of a string's UTF-8), by `crypto.subtle`. */
export async function sha256Hex(data) {
  const bytes = typeof data === 'string' ? utf8Encode(data) : data;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  let hex = '';
  for (const b of digest) hex += b.toString(16).padStart(2, '0');
  return hex;
}

/** Whether two byte arrays hold the same bytes. */
export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The current time in milliseconds since the epoch, from `wasi:clocks`
 * directly: `Date.now()` is frozen at build time when the component is built
 * with `-d clocks`.
 */
export function nowMillis() {
  const { seconds, nanoseconds } = wallClockNow();
  return Number(seconds) * 1000 + Math.floor(nanoseconds / 1e6);
}

/** `YYYYMMDDTHHMMSSZ` (UTC) for milliseconds since the epoch, as the Rust SDK writes it. */
export function utcStamp(millis) {
  const d = new Date(millis);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return (
    `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}` +
    `T${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`
  );
}

// ---------------------------------------------------------------------------
// Files over wasi:filesystem
// ---------------------------------------------------------------------------

const FS_MESSAGES = {
  access: 'permission denied',
  'would-block': 'operation would block',
  already: 'operation already in progress',
  'bad-descriptor': 'bad descriptor',
  busy: 'device or resource busy',
  deadlock: 'resource deadlock would occur',
  quota: 'disk quota exceeded',
  exist: 'file exists',
  'file-too-large': 'file too large',
  'illegal-byte-sequence': 'illegal byte sequence',
  'in-progress': 'operation in progress',
  interrupted: 'interrupted',
  invalid: 'invalid argument',
  io: 'input/output error',
  'is-directory': 'is a directory',
  loop: 'too many levels of symbolic links',
  'too-many-links': 'too many links',
  'message-size': 'message too large',
  'name-too-long': 'file name too long',
  'no-device': 'no such device',
  'no-entry': 'no such file or directory',
  'no-lock': 'no locks available',
  'insufficient-memory': 'out of memory',
  'insufficient-space': 'no space left on device',
  'not-directory': 'not a directory',
  'not-empty': 'directory not empty',
  'not-recoverable': 'state not recoverable',
  unsupported: 'operation not supported',
  'no-tty': 'not a terminal',
  'no-such-device': 'no such device or address',
  overflow: 'value too large',
  'not-permitted': 'operation not permitted',
  pipe: 'broken pipe',
  'read-only': 'read-only file system',
  'invalid-seek': 'invalid seek',
  'text-file-busy': 'text file busy',
  'cross-device': 'cross-device link',
  // Not WASI codes: raised by this module.
  'not-granted': 'not inside a directory granted to this step',
  'invalid-path': 'not an absolute guest path without `..`',
  'too-large': 'file too large',
};

/**
 * A file-system error: `code` is the `wasi:filesystem` error code
 * (`no-entry`, `access`, `read-only`, …) or `not-granted` / `invalid-path` /
 * `too-large`; `path` is the guest path. The message reads like an OS error
 * (`no such file or directory`): callers add the context.
 */
export class FsError extends Error {
  constructor(code, path, detail) {
    super(detail ?? FS_MESSAGES[code] ?? `file-system error \`${code}\``);
    this.name = 'FsError';
    this.code = code;
    this.path = path;
  }
}

/** Runs a wasi:filesystem call, turning its thrown error code into an FsError. */
function wasi(path, call) {
  try {
    return call();
  } catch (e) {
    if (e instanceof FsError) throw e;
    const code = e !== null && typeof e === 'object' && typeof e.payload === 'string' ? e.payload : undefined;
    if (code !== undefined) throw new FsError(code, path);
    throw e;
  }
}

const dispose = Symbol.dispose ?? Symbol.for('dispose');

/** Releases a descriptor now rather than when the instance ends. */
function close(descriptor) {
  try {
    descriptor?.[dispose]?.();
  } catch {
    // Closing never fails in a way that matters: the instance ends after the call.
  }
}

let preopenCache = null;

/** The directory grants of this call, `[{ descriptor, path }]`, longest path first. */
function preopens() {
  if (preopenCache === null) {
    preopenCache = getDirectories()
      .map(([descriptor, path]) => ({ descriptor, path: trimSlashes(path) }))
      .sort((a, b) => b.path.length - a.path.length);
  }
  return preopenCache;
}

function trimSlashes(path) {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

/**
 * Splits an absolute guest path into the grant that contains it and the path
 * relative to that grant: `resolveGuestPath('/app/conf/x.json', ['/app'])`
 * is `{ root: '/app', relative: 'conf/x.json' }`. `.` and empty components
 * are dropped; `..` is refused (an `invalid-path` FsError), as is a path in no
 * grant (`not-granted`). The innermost grant wins.
 */
export function resolveGuestPath(path, roots) {
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0')) {
    throw new FsError('invalid-path', path);
  }
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new FsError('invalid-path', path);
  const normalized = `/${parts.join('/')}`;
  const sorted = [...roots].map(trimSlashes).sort((a, b) => b.length - a.length);
  for (const root of sorted) {
    const rootParts = root.split('/').filter((p) => p !== '');
    if (rootParts.every((p, i) => parts[i] === p)) {
      const rest = parts.slice(rootParts.length).join('/');
      return { root, relative: rest === '' ? '.' : rest, path: normalized };
    }
  }
  throw new FsError('not-granted', path);
}

/** `{ descriptor, relative }` for a guest path: the grant's directory descriptor. */
function locate(path) {
  const all = preopens();
  const { root, relative } = resolveGuestPath(
    path,
    all.map((p) => p.path),
  );
  return { dir: all.find((p) => p.path === root).descriptor, relative };
}

/** The parent directory of a guest path, and the last component. */
export function splitPath(path) {
  const trimmed = path.replace(/\/+$/, '');
  const i = trimmed.lastIndexOf('/');
  return { dir: i <= 0 ? '/' : trimmed.slice(0, i), name: trimmed.slice(i + 1) };
}

function joinPath(dir, name) {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

/**
 * What is at `path`, without following a final symbolic link:
 * `{ type, size, linkCount }` (`type`: `regular-file`, `directory`,
 * `symbolic-link`, …; sizes as Numbers), or null when nothing is there.
 */
export function stat(path) {
  const { dir, relative } = locate(path);
  try {
    const s = wasi(path, () => dir.statAt({ symlinkFollow: false }, relative));
    return { type: s.type, size: Number(s.size), linkCount: Number(s.linkCount) };
  } catch (e) {
    if (e instanceof FsError && e.code === 'no-entry') return null;
    throw e;
  }
}

/** The target of the symbolic link at `path`. */
export function readLink(path) {
  const { dir, relative } = locate(path);
  return wasi(path, () => dir.readlinkAt(relative));
}

const CHUNK = 1024 * 1024;

function readAll(descriptor, path, maxBytes) {
  const chunks = [];
  let total = 0;
  for (;;) {
    const [chunk, eof] = wasi(path, () => descriptor.read(BigInt(CHUNK), BigInt(total)));
    if (chunk.length > 0) {
      chunks.push(chunk);
      total += chunk.length;
      if (maxBytes !== undefined && total > maxBytes) throw new FsError('too-large', path);
    }
    if (eof || chunk.length === 0) break;
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

function writeAll(descriptor, path, bytes) {
  let at = 0;
  while (at < bytes.length) {
    const end = Math.min(bytes.length, at + CHUNK);
    const written = Number(wasi(path, () => descriptor.write(bytes.subarray(at, end), BigInt(at))));
    if (written <= 0) throw new FsError('io', path, 'the write made no progress');
    at += written;
  }
}

/**
 * The bytes of the file at `path`. With `maxBytes`, a larger file is a
 * `too-large` FsError (read no further than one chunk past the bound).
 */
export function readFile(path, { maxBytes } = {}) {
  const { dir, relative } = locate(path);
  const file = wasi(path, () => dir.openAt({ symlinkFollow: true }, relative, {}, { read: true }));
  try {
    return readAll(file, path, maxBytes);
  } finally {
    close(file);
  }
}

/** The file at `path` as UTF-8 text. */
export function readText(path, options) {
  return utf8Decode(readFile(path, options));
}

/**
 * Writes `bytes` (or a string, as UTF-8) to `path` and syncs it. By default
 * the file is created or truncated; with `{ createNew: true }` an existing
 * file is an `exist` FsError. Not atomic: use {@link replaceAtomically} to
 * replace a file that matters.
 */
export function writeFile(path, data, { createNew = false } = {}) {
  const bytes = typeof data === 'string' ? utf8Encode(data) : data;
  const { dir, relative } = locate(path);
  const openFlags = createNew ? { create: true, exclusive: true } : { create: true, truncate: true };
  const file = wasi(path, () => dir.openAt({}, relative, openFlags, { write: true }));
  try {
    writeAll(file, path, bytes);
    wasi(path, () => file.sync());
  } catch (e) {
    // A file this call created is removed again: no half-written leftovers.
    if (createNew) {
      close(file);
      tryRemove(path);
    }
    throw e;
  } finally {
    close(file);
  }
}

/** Removes the file at `path`. */
export function removeFile(path) {
  const { dir, relative } = locate(path);
  wasi(path, () => dir.unlinkFileAt(relative));
}

/** Renames `from` to `to`; both must be in the same grant. */
export function rename(from, to) {
  const a = locate(from);
  const b = locate(to);
  wasi(from, () => a.dir.renameAt(a.relative, b.dir, b.relative));
}

/** fsyncs a directory, so a create or rename inside it survives a crash. */
export function syncDir(path) {
  const { dir, relative } = locate(path);
  const d = wasi(path, () => dir.openAt({}, relative, { directory: true }, { read: true }));
  try {
    wasi(path, () => d.sync());
  } finally {
    close(d);
  }
}

/**
 * Gives `target` the permission bits, owner and group of `source`, through the
 * host (WASI has no chmod or chown). Both are absolute guest paths in the
 * step's grants; `target` must be in a read-write grant. Refused during `plan`
 * and `verify`. Throws an FsError (`code` `not-permitted`) with the host's reason.
 */
export function copyPermissions(source, target) {
  try {
    hostCopyPermissions(source, target);
  } catch (e) {
    throw new FsError('not-permitted', target, `cannot copy permissions from \`${source}\`: ${hostReason(e)}`);
  }
}

/** Throws the FsError a reader would get when `path` is missing or a directory. */
function requireFile(path) {
  const found = stat(path);
  if (found === null) throw new FsError('no-entry', path, `\`${path}\` does not exist`);
  if (found.type === 'directory') throw new FsError('is-directory', path, `\`${path}\` is a directory`);
}

/**
 * Copies the regular file `source` to `target` (created, or truncated and
 * rewritten) and syncs it, through the host (`backout:step/files.copy-file`):
 * in the kernel, with progress shown to the operator; the bytes never pass
 * through the plugin's memory. Both are absolute guest paths; `target` must
 * be in a read-write grant. Only `run` and `undo` may call it. `target`'s
 * permissions are left as they are (see {@link copyPermissions}). Returns the
 * bytes copied. Throws an FsError (`code` `not-permitted`) with the host's reason.
 */
export function copyFile(source, target) {
  requireFile(source);
  try {
    return Number(hostCopyFile(source, target));
  } catch (e) {
    throw new FsError('not-permitted', target, `cannot copy \`${source}\` to \`${target}\`: ${hostReason(e)}`);
  }
}

/**
 * The sha256 of the regular file at `path` as lowercase hex, hashed by the
 * host (`backout:step/files.sha256-file`): natively, without reading the
 * file into the plugin. Allowed in every call but `describe`.
 */
export function sha256File(path) {
  requireFile(path);
  try {
    return hostSha256File(path);
  } catch (e) {
    throw new FsError('not-permitted', path, `cannot hash \`${path}\`: ${hostReason(e)}`);
  }
}

/**
 * Declares to the host that the step is about to create a temporary file at
 * `path` (an absolute guest path in a read-write grant) and will remove or
 * rename it away before the call returns. Call it before the file exists: if
 * the call never returns (backout is killed, it times out or traps), the host
 * removes the file. Only `run` and `undo` may call it; `safetyCopy` and
 * `replaceAtomically` declare their own. Throws an FsError (`code`
 * `not-permitted`) with the host's reason.
 */
export function temporaryFile(path) {
  try {
    hostTemporaryFile(path);
  } catch (e) {
    throw new FsError('not-permitted', path, `the host did not accept \`${path}\` as a temporary file: ${hostReason(e)}`);
  }
}

/**
 * Gives the complete file `from` the new name `to`, never replacing a file
 * already there (an `exist` FsError). Both must be in the same grant. A hard
 * link and then the removal of `from`, so the file system itself refuses an
 * existing `to`; where hard links are unsupported (`unsupported` or
 * `not-permitted`) it checks that `to` is free and renames. On error `from`
 * is still there and `to` is not this call's. Does not sync the directory.
 */
export function renameNoClobber(from, to) {
  const a = locate(from);
  const b = locate(to);
  try {
    wasi(to, () => a.dir.linkAt({}, a.relative, b.dir, b.relative));
  } catch (e) {
    if (!(e instanceof FsError && (e.code === 'unsupported' || e.code === 'not-permitted'))) throw e;
    if (stat(to) !== null) throw new FsError('exist', to);
    rename(from, to);
    return;
  }
  try {
    removeFile(from);
  } catch (e) {
    tryRemove(to);
    throw e;
  }
}

/**
 * Creates a new hidden temporary file `.<name>.backout-tmp-<time>-<n>` in
 * `dir` holding `bytes`, synced, declared to the host before it exists;
 * returns its path. A name already taken is skipped, never declared.
 *
 * With `permissionsFrom`, the empty file gets that file's permissions and
 * owner (`copyPermissions`) before the first byte is written, so not one
 * byte is ever in it under the default mode. On any error the file is
 * removed.
 */
function createTemp(dir, name, bytes, permissionsFrom) {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const candidate = joinPath(dir, `.${name}.backout-tmp-${nowMillis().toString(16)}-${attempt}`);
    if (stat(candidate) !== null) continue;
    temporaryFile(candidate);
    const { dir: parent, relative } = locate(candidate);
    let file;
    try {
      file = wasi(candidate, () => parent.openAt({}, relative, { create: true, exclusive: true }, { write: true }));
    } catch (e) {
      if (e instanceof FsError && e.code === 'exist') continue;
      throw e;
    }
    let written = false;
    try {
      if (permissionsFrom !== undefined) copyPermissions(permissionsFrom, candidate);
      writeAll(file, candidate, bytes);
      wasi(candidate, () => file.sync());
      written = true;
    } finally {
      close(file);
      if (!written) tryRemove(candidate);
    }
    return candidate;
  }
  throw new FsError('exist', joinPath(dir, name), `no free temporary name for \`${name}\` in \`${dir}\``);
}

/**
 * Copies `path` to a new file `<name>.backout-<UTC time>.bak` in `dir`
 * (default: beside `path`) with `path`'s permissions and owner, syncs the
 * copy and the directory, and returns the copy's guest path. Never
 * overwrites: an existing name gets a `-N` suffix. The bytes go to a declared
 * temporary file first, which has `path`'s permissions and owner before its
 * first byte (a copy of a 0600 file is never readable by others) and takes
 * the `.bak` name only once complete and synced: a crash never leaves a
 * partial file under a safety copy's name.
 */
export function safetyCopy(path, { dir } = {}) {
  const { dir: parent, name } = splitPath(path);
  const target = dir ?? parent;
  requireFile(path);
  const stamp = utcStamp(nowMillis());
  // Empty, with `path`'s permissions; then the host fills and syncs it.
  const temp = createTemp(target, name, new Uint8Array(0), path);
  try {
    copyFile(path, temp);
    for (let attempt = 0; attempt < 1000; attempt++) {
      const suffix = attempt === 0 ? '' : `-${attempt}`;
      const candidate = joinPath(target, `${name}.backout-${stamp}${suffix}.bak`);
      try {
        renameNoClobber(temp, candidate);
      } catch (e) {
        if (e instanceof FsError && e.code === 'exist') continue;
        throw e;
      }
      try {
        syncDir(target);
      } catch (e) {
        tryRemove(candidate);
        throw e;
      }
      return candidate;
    }
  } catch (e) {
    tryRemove(temp);
    throw e;
  }
  tryRemove(temp);
  throw new FsError('exist', path, `no free safety-copy name for \`${name}\` in \`${target}\``);
}

function tryRemove(path) {
  try {
    removeFile(path);
  } catch {
    // Best effort: the caller reports the error that matters.
  }
}

/**
 * Replaces `path` with `data` (bytes, or a string as UTF-8) atomically: a
 * temp file in the same directory (declared to the host first), given the
 * permissions and owner of the file it replaces (when there is one) while
 * still empty, written, synced, renamed over `path`, then the directory
 * synced. On error the temp file is removed and `path` is untouched.
 *
 * When no file is at `path`, the new file keeps the host's default mode (0666
 * less backout's umask) throughout: WASI has no chmod and there is no file to
 * take other permissions from, and the finished file would have that mode
 * anyway.
 */
export function replaceAtomically(path, data) {
  const bytes = typeof data === 'string' ? utf8Encode(data) : data;
  const { dir, name } = splitPath(path);
  const existing = stat(path);
  const replacesAFile = existing !== null && existing.type === 'regular-file';
  const temp = createTemp(dir, name, bytes, replacesAFile ? path : undefined);
  try {
    rename(temp, path);
  } catch (e) {
    tryRemove(temp);
    throw e;
  }
  syncDir(dir);
}

/** The file helpers, as one namespace: `import { fs } from './backout-sdk.js'`. */
export const fs = Object.freeze({
  stat,
  readLink,
  readFile,
  readText,
  writeFile,
  removeFile,
  rename,
  syncDir,
  copyPermissions,
  copyFile,
  sha256File,
  temporaryFile,
  renameNoClobber,
  safetyCopy,
  replaceAtomically,
  resolveGuestPath,
  splitPath,
});
