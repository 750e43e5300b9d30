// config.js: what a json-config step's `with` table may hold, its JSON
// Schema, and the checks a schema cannot express. Pure: no I/O.
//
// The SDK's `parseConfig` has already checked the top level against SCHEMA
// (unknown keys, missing `file`, the type of each key); `validate` checks the
// rest and reports every problem at once, each at its key (`problems`, read
// by the SDK's `toStepError`).

import { EditError, parsePointer } from './jsonedit.js';

/** The config's JSON Schema (draft 2020-12), for people and tools. */
export const SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'json-config',
  description:
    'Set or remove values in a JSON file by JSON Pointer (RFC 6901), keeping every other byte: ' +
    'key order, indentation, spacing, number spellings, the final newline.',
  type: 'object',
  properties: {
    file: {
      description: 'Guest path of the JSON file, inside a directory granted read-write to the step.',
      type: 'string',
      pattern: '^/',
      examples: ['/app/config.json'],
    },
    set: {
      description:
        'JSON Pointer → new value (any JSON value). `-` as the last token appends to an array. ' +
        'A value already as requested is left untouched.',
      type: 'object',
      propertyNames: { pattern: '^/' },
      default: {},
      examples: [{ '/features/insight_generation/enabled': false, '/limits/rate': 100 }],
    },
    remove: {
      description: 'JSON Pointers of values to remove. A value already absent is left as it is.',
      type: 'array',
      items: { type: 'string', pattern: '^/' },
      uniqueItems: true,
      default: [],
    },
    create_missing: {
      description: 'Create keys of `set` that are absent, and absent parent objects, instead of refusing.',
      type: 'boolean',
      default: false,
    },
  },
  required: ['file'],
  additionalProperties: false,
  anyOf: [
    { required: ['set'], properties: { set: { minProperties: 1 } } },
    { required: ['remove'], properties: { remove: { minItems: 1 } } },
  ],
};

/** The JSON pointer token for `key`: `~` as `~0`, `/` as `~1`. */
const token = (key) => String(key).replaceAll('~', '~0').replaceAll('/', '~1');

/**
 * Checks a config the SDK parsed against SCHEMA: the file is an absolute guest
 * path; every pointer is well formed, not the whole document, and named once;
 * no pointer lies inside another (their order would matter); `-` only ends a
 * pointer of `set`. Returns `{ file, set: [[pointer, value]], remove, createMissing }`.
 *
 * Every problem names its key in the `with` table by JSON pointer (`/set/~1a`,
 * `/remove/2`), so the host shows it at that key's line; two pointers that
 * collide are named at the one written first in the message.
 */
export function validate(config) {
  const problems = [];
  const at = (pointer, message) => problems.push({ pointer, message });
  const file = config.file;
  if (file === '') at('/file', '`file` is empty: give the guest path of the JSON file, such as `/app/config.json`');
  else if (!file.startsWith('/')) at('/file', `\`file\` must be an absolute guest path such as \`/app/config.json\`, not \`${file}\``);
  else if (file.endsWith('/') || file.endsWith('/.') || file.endsWith('/..')) at('/file', `\`file\` must name a file, not the directory \`${file}\``);
  else if (file.includes('\0')) at('/file', '`file` contains a NUL character');

  const set = Object.entries(config.set);
  const remove = config.remove;
  const all = [];
  for (const [pointer] of set) {
    const key = `/set/${token(pointer)}`;
    const tokens = checkPointer('set', pointer, (message) => at(key, message));
    if (tokens !== null) {
      const dash = tokens.indexOf('-');
      if (dash !== -1 && dash !== tokens.length - 1) {
        at(key, `\`set\` names \`${pointer}\`: \`-\` (append) can only be the last token`);
      }
      all.push({ field: 'set', pointer, tokens, key });
    }
  }
  remove.forEach((pointer, i) => {
    const key = `/remove/${i}`;
    if (typeof pointer !== 'string') {
      at(key, `\`remove\` must list pointers (strings), not ${typeof pointer}`);
      return;
    }
    const tokens = checkPointer('remove', pointer, (message) => at(key, message));
    if (tokens === null) return;
    if (tokens.includes('-')) at(key, `\`remove\` names \`${pointer}\`: \`-\` names no existing element`);
    if (remove.indexOf(pointer) !== i) at(key, `\`remove\` lists \`${pointer}\` more than once`);
    else all.push({ field: 'remove', pointer, tokens, key });
  });
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      const [a, b] = [all[i], all[j]];
      if (a.pointer === b.pointer) {
        at(a.key, `\`${a.pointer}\` is in both \`set\` and \`remove\`; keep it in one of them`);
      } else if (isPrefix(a.tokens, b.tokens) || isPrefix(b.tokens, a.tokens)) {
        const [outer, inner] = a.tokens.length < b.tokens.length ? [a, b] : [b, a];
        at(
          inner.key,
          `\`${inner.pointer}\` (in \`${inner.field}\`) lies inside \`${outer.pointer}\` (in \`${outer.field}\`); ` +
            'change the outer value as a whole, or use two steps',
        );
      }
    }
  }
  if (set.length === 0 && remove.length === 0) {
    problems.push({ message: 'nothing to do: give `set` or `remove` (or both) at least one pointer' });
  }
  if (problems.length > 0) {
    const error = new EditError('invalid-config', problems.map((p) => p.message).join('; '));
    error.problems = problems;
    throw error;
  }
  return { file, set, remove, createMissing: config.create_missing };
}

function checkPointer(field, pointer, problem) {
  if (pointer === '') {
    problem(`\`${field}\` names the empty pointer (the whole document); json-config changes values inside it`);
    return null;
  }
  try {
    return parsePointer(pointer);
  } catch (reason) {
    problem(`\`${field}\` names \`${pointer}\`, which is not a JSON Pointer: ${reason}`);
    return null;
  }
}

function isPrefix(short, long) {
  return short.length < long.length && short.every((t, i) => t === long[i]);
}
