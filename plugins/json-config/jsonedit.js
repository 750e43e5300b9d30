// jsonedit.js: edits JSON text by JSON Pointer (RFC 6901) and keeps every
// byte it was not asked to change.
//
// The document is parsed (strictly, RFC 8259) into a tree that records where
// each value, key and separator sits in the text. An edit never re-serializes
// the document: a changed value's bytes are replaced, a removed entry is cut
// out with its separator, an added entry is written in the style of its
// neighbours (indentation, spacing after `:` and `,`, line endings). Untouched
// values keep their exact text: number spellings, string escapes, key order,
// a byte order mark, the final newline or its absence.
//
// Every pointer refers to the document as it was before the edit, so
// removing `/items/0` and `/items/1` removes the first two elements.
//
// Pure: no I/O, no host calls. Errors carry a `kind` (`precondition` or
// `invalid-config`), which the SDK maps to the step error of that name.

/** Nesting deeper than this is refused rather than risking the stack. */
export const MAX_DEPTH = 512;

/** An error with a `step-error` kind; see the SDK's `toStepError`. */
export class EditError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'EditError';
    this.kind = kind;
  }
}

const preconditionError = (message) => new EditError('precondition', message);

// ---------------------------------------------------------------------------
// JSON Pointer
// ---------------------------------------------------------------------------

/**
 * The reference tokens of a JSON Pointer: `/a~1b/c~0d` is `['a/b', 'c~d']`;
 * `''` (the whole document) is `[]`. Throws a message (string) when the
 * pointer is malformed.
 */
export function parsePointer(pointer) {
  if (typeof pointer !== 'string') throw `a pointer must be a string, not ${typeof pointer}`;
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw 'a JSON Pointer starts with `/`';
  const tokens = pointer.slice(1).split('/');
  for (const token of tokens) {
    if (/~(?![01])/.test(token)) throw '`~` must be followed by `0` (for `~`) or `1` (for `/`)';
  }
  return tokens.map((t) => t.replace(/~([01])/g, (_, d) => (d === '0' ? '~' : '/')));
}

/** The pointer for reference tokens: the inverse of {@link parsePointer}. */
export function formatPointer(tokens) {
  return tokens.map((t) => `/${String(t).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

const INDEX = /^(0|[1-9][0-9]*)$/;

/** Whether a reference token is an array index (`0`, `17`; not `01` or `-`). */
export function isIndex(token) {
  return INDEX.test(token);
}

// ---------------------------------------------------------------------------
// Parsing with positions
// ---------------------------------------------------------------------------

// Sticky scanners. The engine runs JavaScript without a JIT inside a
// component, so the text is scanned by regular expressions (native code) a
// token or a bracket at a time, never character by character.
const WS = /[ \t\n\r]*/y;
const STRING = /"[^"\\]*(?:\\.[^"\\]*)*"/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const LITERAL = /true|false|null/y;
/** Everything up to the next bracket outside a string; group 1 is the bracket. */
const NEXT_BRACKET = /[^"[\]{}]*(?:"[^"\\]*(?:\\.[^"\\]*)*"[^"[\]{}]*)*([[\]{}])/y;

function skip(re, text, pos) {
  re.lastIndex = pos;
  re.exec(text);
  return re.lastIndex;
}

function matchEnd(re, text, pos) {
  re.lastIndex = pos;
  return re.exec(text) === null ? -1 : re.lastIndex;
}

/**
 * A value in the text. `start`/`end` are UTF-16 offsets (`end` exclusive);
 * `type` is `object`, `array`, `string`, `number`, `boolean` or `null`.
 * A container's `entries` are found the first time they are asked for
 * (`{ key, keyStart, keyEnd, value }` in an object, `{ value }` in an array),
 * so only the containers on the way to a pointer are ever taken apart.
 */
class Node {
  constructor(text, start) {
    this.text = text;
    this.start = start;
    this.type = typeAt(text, start);
    this.end = valueEnd(text, start, this.type);
    this.cachedEntries = undefined;
  }

  get entries() {
    if (this.cachedEntries === undefined) this.cachedEntries = scanEntries(this);
    return this.cachedEntries;
  }
}

function typeAt(text, pos) {
  switch (text[pos]) {
    case '{':
      return 'object';
    case '[':
      return 'array';
    case '"':
      return 'string';
    case 't':
    case 'f':
      return 'boolean';
    case 'n':
      return 'null';
    default:
      return 'number';
  }
}

/** Where the (valid) value starting at `pos` ends. */
function valueEnd(text, pos, type) {
  switch (type) {
    case 'string':
      return matchEnd(STRING, text, pos);
    case 'number':
      return matchEnd(NUMBER, text, pos);
    case 'boolean':
    case 'null':
      return matchEnd(LITERAL, text, pos);
    default: {
      let depth = 1;
      NEXT_BRACKET.lastIndex = pos + 1;
      while (depth > 0) {
        const m = NEXT_BRACKET.exec(text);
        if (m === null) throw new Error('unbalanced brackets in text that JSON.parse accepted');
        depth += m[1] === '{' || m[1] === '[' ? 1 : -1;
      }
      return NEXT_BRACKET.lastIndex;
    }
  }
}

function scanEntries(node) {
  const text = node.text;
  const entries = [];
  const close = node.type === 'object' ? '}' : ']';
  let pos = skip(WS, text, node.start + 1);
  if (text[pos] === close) return entries;
  for (;;) {
    if (node.type === 'object') {
      const keyStart = pos;
      const keyEnd = matchEnd(STRING, text, pos);
      const raw = text.slice(keyStart + 1, keyEnd - 1);
      const key = raw.includes('\\') ? JSON.parse(text.slice(keyStart, keyEnd)) : raw;
      pos = skip(WS, text, keyEnd) + 1; // past `:`
      const value = new Node(text, skip(WS, text, pos));
      entries.push({ key, keyStart, keyEnd, value });
      pos = value.end;
    } else {
      const value = new Node(text, pos);
      entries.push({ value });
      pos = value.end;
    }
    pos = skip(WS, text, pos);
    if (text[pos] !== ',') return entries;
    pos = skip(WS, text, pos + 1);
  }
}

/**
 * Parses JSON text (RFC 8259; a leading byte order mark is allowed and kept)
 * into its top-level {@link Node}. Throws an EditError (`precondition`) naming
 * the line and column of the first problem.
 */
export function parse(text) {
  try {
    JSON.parse(stripBom(text));
  } catch (e) {
    new StrictParser(text).document();
    throw preconditionError(`not valid JSON: ${e.message}`);
  }
  const start = skip(WS, text, text.charCodeAt(0) === 0xfeff ? 1 : 0);
  return new Node(text, start);
}

/**
 * A strict parser that only looks for the first error, to say where it is:
 * used when `JSON.parse` refuses the text (its messages differ by engine).
 */
class StrictParser {
  constructor(text) {
    this.text = text;
    this.pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  }

  fail(message, at = this.pos) {
    const before = this.text.slice(0, at);
    const line = before.split('\n').length;
    const column = at - (before.lastIndexOf('\n') + 1) + 1;
    const found = at >= this.text.length ? 'the end of the file' : describeChar(this.text, at);
    throw preconditionError(`not valid JSON: line ${line}, column ${column}: ${message}, found ${found}`);
  }

  ws() {
    this.pos = skip(WS, this.text, this.pos);
  }

  document() {
    this.ws();
    if (this.pos >= this.text.length) this.fail('expected a JSON value');
    this.value(0);
    this.ws();
    if (this.pos < this.text.length) this.fail('expected the end of the document after the top-level value');
  }

  value(depth) {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`);
    const c = this.text[this.pos];
    if (c === '{' || c === '[') return this.container(depth, c);
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    const end = matchEnd(LITERAL, this.text, this.pos);
    if (end === -1) this.fail('expected a JSON value');
    this.pos = end;
  }

  container(depth, open) {
    const close = open === '{' ? '}' : ']';
    const what = open === '{' ? 'an object' : 'an array';
    this.pos++;
    this.ws();
    if (this.text[this.pos] === close) {
      this.pos++;
      return;
    }
    for (;;) {
      this.ws();
      if (open === '{') {
        if (this.text[this.pos] !== '"') this.fail('expected a key in double quotes');
        this.string();
        this.ws();
        if (this.text[this.pos] !== ':') this.fail('expected `:` after the key');
        this.pos++;
        this.ws();
      }
      this.value(depth + 1);
      this.ws();
      const c = this.text[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === close) {
        this.pos++;
        return;
      }
      this.fail(`expected \`,\` or \`${close}\` after a value in ${what}`);
    }
  }

  string() {
    const t = this.text;
    let i = this.pos + 1;
    for (;;) {
      if (i >= t.length) this.fail('unterminated string', i);
      const c = t.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) this.fail('control character in a string (write it as an escape)', i);
      if (c === 0x5c) {
        const e = t[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(t.slice(i + 2, i + 6))) this.fail('`\\u` must be followed by 4 hex digits', i);
          i += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) this.fail('invalid escape in a string', i);
        i += 2;
        continue;
      }
      i++;
    }
    this.pos = i + 1;
  }

  number() {
    const start = this.pos;
    const end = matchEnd(NUMBER, this.text, start);
    if (end === -1) this.fail('invalid number');
    this.pos = end;
    const next = this.text[end];
    if (next !== undefined && /[0-9.eE+-]/.test(next)) this.fail('invalid number', start);
  }
}

function describeChar(text, at) {
  const c = text.codePointAt(at);
  if (c < 0x20 || c === 0x7f) return `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
  return `\`${String.fromCodePoint(c)}\``;
}

/** The value a node holds, as `JSON.parse` reads it (the last of repeated keys wins). */
export function valueOf(text, node) {
  return JSON.parse(text.slice(node.start, node.end));
}

/** 1-based line number of an offset. */
export function lineOf(text, offset) {
  return (text.slice(0, offset).match(/\n/g)?.length ?? 0) + 1;
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

/** Deep equality of JSON values; object key order does not matter. */
export function jsonEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
}

/** What kind of JSON value a node or value is, for messages. */
export function typeName(nodeOrValue) {
  const type =
    nodeOrValue instanceof Node
      ? nodeOrValue.type
      : nodeOrValue === null
        ? 'null'
        : Array.isArray(nodeOrValue)
          ? 'array'
          : typeof nodeOrValue;
  return { object: 'an object', array: 'an array', string: 'a string', number: 'a number', boolean: 'a boolean', null: 'null' }[type] ?? type;
}

// ---------------------------------------------------------------------------
// Style
// ---------------------------------------------------------------------------

/**
 * How the document is written, so new text matches it: `newline` (`\n` or
 * `\r\n`), `unit` (one level of indentation: a tab, or N spaces; two spaces
 * when the file shows none), `multiline` (whether the top-level value spans
 * lines), `colon` (what follows a key, such as `: `) and `comma` (what
 * separates entries on one line, such as `, `).
 */
export function detectStyle(text, root) {
  const newline = text.includes('\r\n') ? '\r\n' : '\n';
  const firstNewline = text.indexOf('\n', root.start);
  const multiline = firstNewline !== -1 && firstNewline < root.end;
  // Indentation: the lines of the first part of the file are enough.
  let tabs = false;
  let width = 0;
  const INDENT = /\n([ \t]*)(?=[^ \t\r\n])/g;
  INDENT.lastIndex = root.start;
  for (let i = 0, m; i < 5000 && (m = INDENT.exec(text)) !== null && m.index < root.end; i++) {
    if (m[1].startsWith('\t')) tabs = true;
    else if (m[1].length > 0) width = gcd(width, m[1].length);
  }
  const unit = tabs ? '\t' : ' '.repeat(width > 0 ? width : 2);
  // What follows a key, and what separates entries on one line: read from
  // the text between strings (strings themselves may hold `:` and `,`).
  let colon = null;
  let comma = null;
  const STRINGS = /"[^"\\]*(?:\\.[^"\\]*)*"/g;
  STRINGS.lastIndex = root.start;
  let previousEnd = root.start;
  const look = (gap, afterString) => {
    if (colon === null && afterString) {
      const c = /^[ \t]*:[ \t]*/.exec(gap);
      if (c !== null) colon = c[0];
    }
    if (comma === null) {
      const c = /[ \t]*,[ \t]*(?=[^ \t\r\n])/.exec(gap);
      if (c !== null) comma = c[0];
    }
  };
  for (let i = 0, m; i < 5000 && (colon === null || comma === null); i++) {
    m = STRINGS.exec(text);
    const gapEnd = m === null || m.index > root.end ? Math.min(root.end, previousEnd + 65536) : m.index;
    look(text.slice(previousEnd, gapEnd), previousEnd > root.start);
    if (m === null || m.index > root.end) break;
    previousEnd = STRINGS.lastIndex;
  }
  if (colon === null) colon = ': ';
  if (comma === null) comma = colon === ':' ? ',' : ', ';
  return { newline, unit, multiline, colon, comma };
}

function gcd(a, b) {
  return b === 0 ? a : gcd(b, a % b);
}

function entryStart(entry) {
  return entry.keyStart ?? entry.value.start;
}

function entryEnd(entry) {
  return entry.value.end;
}

/** The indentation (spaces and tabs) at the start of the line holding `offset`. */
function lineIndent(text, offset) {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart, offset))[0];
}

/**
 * JSON text for a value in the document's style: over several lines,
 * indented from `indent` by `style.unit`, when `multiline`; on one line with
 * the document's `colon` and `comma` otherwise.
 */
export function serialize(value, style, indent, multiline) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const isArray = Array.isArray(value);
  const items = isArray
    ? value.map((v) => ({ text: (inner) => serialize(v, style, inner, multiline) }))
    : Object.entries(value).map(([k, v]) => ({
        text: (inner) => `${JSON.stringify(k)}${style.colon}${serialize(v, style, inner, multiline)}`,
      }));
  const [open, close] = isArray ? ['[', ']'] : ['{', '}'];
  if (items.length === 0) return open + close;
  if (!multiline) return open + items.map((i) => i.text(indent)).join(style.comma) + close;
  const inner = indent + style.unit;
  const nl = style.newline;
  return `${open}${nl}${inner}${items.map((i) => i.text(inner)).join(`,${nl}${inner}`)}${nl}${indent}${close}`;
}

// ---------------------------------------------------------------------------
// Planning an edit
// ---------------------------------------------------------------------------

/**
 * Works out what a config asks of the document `text`:
 *
 * - `set`: `[[pointer, value], …]`; a value already equal is left as it is;
 *   `-` as the last token appends to an array.
 * - `remove`: `[pointer, …]`; an absent value is already removed.
 * - `createMissing`: create absent keys (and absent parent objects) instead of
 *   refusing.
 *
 * Returns `{ changes, output }`: one change per pointer (set ones first)
 * `{ pointer, action, old, new, line, at, creates, index }`, and the new text
 * (`null` when nothing changes). `action` is `set`, `created`, `removed` or
 * `unchanged`; `old`/`new` are JSON values (`undefined` when absent); `line`
 * is where the old value starts; `at` is where the value sits after the edit
 * (differs from `pointer` when an earlier array element is removed or for
 * `-`). Throws an EditError (`precondition`) naming the pointer when the
 * document cannot take the edit; nothing is half-done.
 */
export function planEdit(text, { set = [], remove = [], createMissing = false }, file = 'the file') {
  let root;
  try {
    root = parse(text);
  } catch (e) {
    throw preconditionError(`\`${file}\` is ${e.message}`);
  }
  const style = detectStyle(text, root);
  const edits = new Map(); // node -> { replace?, removed: Set<index>, added: [{ key?, value }] }
  const editOf = (node) => {
    let e = edits.get(node);
    if (e === undefined) {
      e = { replace: undefined, removed: new Set(), added: [] };
      edits.set(node, e);
    }
    return e;
  };
  const changes = [];
  const pending = []; // [change, path of { node, token }] to compute `at` once removals are known

  for (const [pointer, value] of set) {
    const tokens = parsePointer(pointer);
    const change = { pointer, action: 'unchanged', old: undefined, new: value, line: null, at: pointer };
    const path = [];
    let node = root;
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i];
      const last = i === tokens.length - 1;
      const here = formatPointer(tokens.slice(0, i));
      if (node.type === 'object') {
        const matches = node.entries.filter((e) => e.key === token);
        if (matches.length > 1) throw duplicateKey(pointer, here, token, matches.length, file, text);
        if (matches.length === 1) {
          path.push({ node, token });
          if (last) {
            const old = valueOf(text, matches[0].value);
            change.old = old;
            change.line = lineOf(text, matches[0].value.start);
            if (!jsonEqual(old, value)) {
              change.action = 'set';
              const entryIndent = lineIndent(text, matches[0].keyStart);
              editOf(matches[0].value).replace = serialize(value, style, entryIndent, isMultiline(text, node, style));
              markDirty(edits, path, editOf);
            }
          }
          node = matches[0].value;
          continue;
        }
        if (!createMissing) throw missing(pointer, here, token, file, last);
        const rest = tokens.slice(i + 1);
        const added = editOf(node).added;
        const existing = added.find((a) => a.key === token);
        const nested = nest(rest, value);
        if (existing === undefined) added.push({ key: token, value: nested });
        else existing.value = mergeCreated(existing.value, nested);
        path.push({ node, token });
        markDirty(edits, path.slice(0, -1), editOf);
        change.action = 'created';
        if (!last) change.creates = formatPointer(tokens.slice(0, i + 1));
        break;
      }
      if (node.type === 'array') {
        if (token === '-' && last) {
          const added = editOf(node).added;
          added.push({ value });
          path.push({ node, token });
          markDirty(edits, path.slice(0, -1), editOf);
          change.action = 'created';
          change.append = { node, ordinal: added.length - 1 };
          break;
        }
        if (!isIndex(token)) throw notAnIndex(pointer, here, token, node, file);
        const index = Number(token);
        if (index >= node.entries.length) throw pastTheEnd(pointer, here, index, node, file, last);
        path.push({ node, token: index });
        if (last) {
          const entry = node.entries[index];
          const old = valueOf(text, entry.value);
          change.old = old;
          change.line = lineOf(text, entry.value.start);
          if (!jsonEqual(old, value)) {
            change.action = 'set';
            editOf(entry.value).replace = serialize(value, style, lineIndent(text, entry.value.start), isMultiline(text, node, style));
            markDirty(edits, path, editOf);
          }
        }
        node = node.entries[index].value;
        continue;
      }
      throw scalarInTheWay(pointer, here, node, file);
    }
    changes.push(change);
    pending.push([change, path]);
  }

  for (const pointer of remove) {
    const tokens = parsePointer(pointer);
    const change = { pointer, action: 'unchanged', old: undefined, new: undefined, line: null, at: pointer };
    const path = [];
    let node = root;
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i];
      const last = i === tokens.length - 1;
      const here = formatPointer(tokens.slice(0, i));
      let index;
      if (node.type === 'object') {
        const found = [];
        node.entries.forEach((e, k) => e.key === token && found.push(k));
        if (found.length > 1) throw duplicateKey(pointer, here, token, found.length, file, text);
        if (found.length === 0) break; // already absent
        index = found[0];
      } else if (node.type === 'array') {
        if (!isIndex(token)) throw notAnIndex(pointer, here, token, node, file);
        index = Number(token);
        if (index >= node.entries.length) break; // already absent
      } else {
        throw scalarInTheWay(pointer, here, node, file);
      }
      path.push({ node, token: node.type === 'array' ? index : token });
      if (last) {
        const entry = node.entries[index];
        change.action = 'removed';
        change.old = valueOf(text, entry.value);
        change.line = lineOf(text, entry.value.start);
        change.arrayElement = node.type === 'array';
        editOf(node).removed.add(index);
        markDirty(edits, path.slice(0, -1), editOf);
        break;
      }
      node = node.entries[index].value;
    }
    changes.push(change);
    pending.push([change, path]);
  }

  // Where each value sits after the edit: indexes shift past removed elements.
  for (const [change, path] of pending) {
    if (change.action === 'unchanged' && change.old === undefined) continue;
    const tokens = path.map(({ node, token }) => {
      if (node.type !== 'array' || token === '-') return token;
      const removed = edits.get(node)?.removed ?? new Set();
      return token - [...removed].filter((r) => r < token).length;
    });
    if (change.append !== undefined) {
      const { node, ordinal } = change.append;
      const removed = edits.get(node)?.removed.size ?? 0;
      change.index = node.entries.length - removed + ordinal;
      tokens[tokens.length - 1] = change.index;
      delete change.append;
    } else if (change.action === 'created') {
      const rest = parsePointer(change.pointer).slice(tokens.length);
      if (rest[rest.length - 1] === '-') rest[rest.length - 1] = '0'; // appended to a new array
      tokens.push(...rest);
    }
    change.at = formatPointer(tokens.map(String));
  }

  if (![...edits.values()].some((e) => e.replace !== undefined || e.removed.size > 0 || e.added.length > 0)) {
    return { changes, output: null, style };
  }
  const output = text.slice(0, root.start) + render(text, root, edits, style) + text.slice(root.end);
  selfCheck(text, output, { set, remove, changes });
  return { changes, output, style };
}

/** Marks every container on `path` as holding an edit below it. */
function markDirty(edits, path, editOf) {
  for (const { node } of path) editOf(node);
}

/**
 * `{ a: { b: value } }` for tokens `['a', 'b']`; the value itself for none.
 * A last token `-` (append) makes an array: `['a', '-']` is `{ a: [value] }`.
 */
function nest(tokens, value) {
  return tokens.reduceRight(
    (inner, token, i) => (token === '-' && i === tokens.length - 1 ? [inner] : setOwn({}, token, inner)),
    value,
  );
}

/** `object[key] = value` as an own property, even for a key like `__proto__`. */
function setOwn(object, key, value) {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  return object;
}

/** Merges two objects built by {@link nest} for different pointers. */
function mergeCreated(a, b) {
  const out = {};
  for (const [k, v] of Object.entries(a)) setOwn(out, k, v);
  for (const [k, v] of Object.entries(b)) {
    setOwn(out, k, Object.hasOwn(out, k) && isPlainObject(out[k]) && isPlainObject(v) ? mergeCreated(out[k], v) : v);
  }
  return out;
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Whether a container's entries are laid out over several lines. */
function isMultiline(text, node, style) {
  if (node.entries.length === 0) return style.multiline;
  return text.slice(node.start, node.end).includes('\n');
}

/** The text of a node with the planned edits applied. */
function render(text, node, edits, style) {
  const edit = edits.get(node);
  if (edit === undefined) return text.slice(node.start, node.end);
  if (edit.replace !== undefined) return edit.replace;
  if (node.type !== 'object' && node.type !== 'array') return text.slice(node.start, node.end);
  const [open, close] = node.type === 'object' ? ['{', '}'] : ['[', ']'];
  const entries = node.entries;
  const n = entries.length;
  const multiline = isMultiline(text, node, style);
  const colonOf = () => (n > 0 && node.type === 'object' ? text.slice(entries[n - 1].keyEnd, entries[n - 1].value.start) : style.colon);
  let childIndent;
  if (n > 0 && multiline) childIndent = lineIndent(text, entryStart(entries[n - 1]));
  else childIndent = lineIndent(text, node.start) + style.unit;
  const addedText = edit.added.map((a) => {
    const value = serialize(a.value, style, childIndent, multiline);
    return node.type === 'object' ? `${JSON.stringify(a.key)}${colonOf()}${value}` : value;
  });
  const kept = [];
  entries.forEach((entry, i) => {
    if (edit.removed.has(i)) return;
    const head = node.type === 'object' ? text.slice(entry.keyStart, entry.value.start) : '';
    kept.push(head + render(text, entry.value, edits, style));
  });
  const pieces = [...kept, ...addedText];
  if (pieces.length === 0) return open + close;
  if (n === 0) {
    if (!multiline) return open + pieces.join(style.comma) + close;
    const base = lineIndent(text, node.start);
    const nl = style.newline;
    return `${open}${nl}${childIndent}${pieces.join(`,${nl}${childIndent}`)}${nl}${base}${close}`;
  }
  const lead = text.slice(node.start + 1, entryStart(entries[0]));
  const trail = text.slice(entryEnd(entries[n - 1]), node.end - 1);
  const seps = [];
  for (let i = 0; i + 1 < n; i++) seps.push(text.slice(entryEnd(entries[i]), entryStart(entries[i + 1])));
  // A new entry is separated as the last one is; in a container of one entry,
  // by a line break and its indentation, or the document's one-line comma.
  const fallback = seps.length > 0 ? seps[seps.length - 1] : lead.includes('\n') ? `,${lead}` : style.comma;
  let out = lead + pieces[0];
  for (let i = 1; i < pieces.length; i++) out += (i - 1 < seps.length ? seps[i - 1] : fallback) + pieces[i];
  return open + out + trail + close;
}

/**
 * Checks the new text before anything is written: it parses, and it means
 * exactly the old document with the requested changes and nothing else.
 */
function selfCheck(before, after, { set, remove, changes }) {
  const bug = (what) =>
    new EditError('failed', `json-config computed an edit that ${what}; nothing was written (this is a bug in json-config)`);
  // One parsed document at a time: the text of each is compared, so a large
  // file is not held twice as objects.
  const expected = JSON.stringify(applyToValue(JSON.parse(stripBom(before)), set, remove, changes));
  let actual;
  try {
    actual = JSON.stringify(JSON.parse(stripBom(after)));
  } catch {
    throw bug('is not valid JSON');
  }
  if (expected !== actual && !jsonEqual(JSON.parse(expected), JSON.parse(actual))) throw bug('changes more than was asked');
}

function stripBom(text) {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** The requested changes applied to parsed JSON: what the new file must mean. */
export function applyToValue(doc, set, remove, changes) {
  const actionOf = new Map(changes.map((c) => [c.pointer, c.action]));
  for (const [pointer, value] of set) {
    if (actionOf.get(pointer) === 'unchanged') continue;
    const tokens = parsePointer(pointer);
    let node = doc;
    for (let i = 0; i < tokens.length - 1; i++) {
      const t = tokens[i];
      if (Array.isArray(node)) node = node[Number(t)];
      else {
        if (!Object.hasOwn(node, t)) setOwn(node, t, i === tokens.length - 2 && tokens[i + 1] === '-' ? [] : {});
        node = node[t];
      }
    }
    const last = tokens[tokens.length - 1];
    if (Array.isArray(node)) {
      if (last === '-') node.push(value);
      else node[Number(last)] = value;
    } else setOwn(node, last, value);
  }
  const arrayRemovals = new Map(); // array -> indexes
  for (const pointer of remove) {
    if (actionOf.get(pointer) !== 'removed') continue;
    const tokens = parsePointer(pointer);
    let node = doc;
    for (let i = 0; i < tokens.length - 1; i++) node = Array.isArray(node) ? node[Number(tokens[i])] : node[tokens[i]];
    const last = tokens[tokens.length - 1];
    if (Array.isArray(node)) {
      if (!arrayRemovals.has(node)) arrayRemovals.set(node, []);
      arrayRemovals.get(node).push(Number(last));
    } else delete node[last];
  }
  for (const [array, indexes] of arrayRemovals) {
    for (const i of indexes.sort((a, b) => b - a)) array.splice(i, 1);
  }
  return doc;
}

// ---------------------------------------------------------------------------
// Checking a document after the edit
// ---------------------------------------------------------------------------

/**
 * Looks a pointer up in a parsed document: `{ found: true, value, line }`,
 * `{ found: false }`, or `{ found: false, ambiguous: true }` when a key on the
 * way appears more than once.
 */
export function lookup(text, root, pointer) {
  let node = root;
  for (const token of parsePointer(pointer)) {
    if (node.type === 'object') {
      const matches = node.entries.filter((e) => e.key === token);
      if (matches.length !== 1) return { found: false, ambiguous: matches.length > 1 };
      node = matches[0].value;
    } else if (node.type === 'array' && isIndex(token) && Number(token) < node.entries.length) {
      node = node.entries[Number(token)].value;
    } else {
      return { found: false };
    }
  }
  return { found: true, value: valueOf(text, node), line: lineOf(text, node.start) };
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

function show(pointer) {
  return pointer === '' ? 'the top-level value' : `\`${pointer}\``;
}

function duplicateKey(pointer, here, key, count, file) {
  return preconditionError(
    `\`${pointer}\`: key \`${key}\` appears ${count} times in ${show(here)} of \`${file}\`; ` +
      'JSON readers disagree on which one counts, so json-config refuses to guess',
  );
}

function missing(pointer, here, key, file, last) {
  const what = last ? `${show(here)} has no key \`${key}\`` : `${show(here)} has no key \`${key}\` (a parent of the value)`;
  return preconditionError(
    `\`${pointer}\` does not exist in \`${file}\`: ${what}; set \`create_missing = true\` to create it`,
  );
}

function notAnIndex(pointer, here, token, node, file) {
  return preconditionError(
    `\`${pointer}\`: ${show(here)} in \`${file}\` is an array (${node.entries.length} elements), and \`${token}\` is not an index ` +
      '(`0`, `1`, …, or `-` to append as the last token)',
  );
}

function pastTheEnd(pointer, here, index, node, file, last) {
  const hint = last ? '; use `-` as the last token to append' : '';
  return preconditionError(
    `\`${pointer}\`: index ${index} is past the end of the array ${show(here)} in \`${file}\` (${node.entries.length} elements)${hint}`,
  );
}

function scalarInTheWay(pointer, here, node, file) {
  return preconditionError(
    `\`${pointer}\`: ${show(here)} in \`${file}\` is ${typeName(node)}, not an object or array, so it has no members`,
  );
}
