// config.js: what a json-config step's `with` table may hold, its JSON
// Schema, and the checks a schema cannot express. Pure: no I/O.
//
// The SDK's `parseConfig` has already checked the top level against SCHEMA
// (unknown keys, missing `file`, the type of each key); `validate` checks the
// rest and reports every problem at once.

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

/**
 * Checks a config the SDK parsed against SCHEMA: the file is an absolute guest
 * path; every pointer is well formed, not the whole document, and named once;
 * no pointer lies inside another (their order would matter); `-` only ends a
 * pointer of `set`. Returns `{ file, set: [[pointer, value]], remove, createMissing }`.
 */
export function validate(config) {
  const problems = [];
  const file = config.file;
  if (file === '') problems.push('`file` is empty: give the guest path of the JSON file, such as `/app/config.json`');
  else if (!file.startsWith('/')) problems.push(`\`file\` must be an absolute guest path such as \`/app/config.json\`, not \`${file}\``);
  else if (file.endsWith('/') || file.endsWith('/.') || file.endsWith('/..')) problems.push(`\`file\` must name a file, not the directory \`${file}\``);
  else if (file.includes('\0')) problems.push('`file` contains a NUL character');

  const set = Object.entries(config.set);
  const remove = config.remove;
  const all = [];
  for (const [pointer] of set) {
    const tokens = checkPointer('set', pointer, problems);
    if (tokens !== null) {
      const dash = tokens.indexOf('-');
      if (dash !== -1 && dash !== tokens.length - 1) {
        problems.push(`\`set\` names \`${pointer}\`: \`-\` (append) can only be the last token`);
      }
      all.push({ field: 'set', pointer, tokens });
    }
  }
  remove.forEach((pointer, i) => {
    if (typeof pointer !== 'string') {
      problems.push(`\`remove\` must list pointers (strings), not ${typeof pointer}`);
      return;
    }
    const tokens = checkPointer('remove', pointer, problems);
    if (tokens === null) return;
    if (tokens.includes('-')) problems.push(`\`remove\` names \`${pointer}\`: \`-\` names no existing element`);
    if (remove.indexOf(pointer) !== i) problems.push(`\`remove\` lists \`${pointer}\` more than once`);
    else all.push({ field: 'remove', pointer, tokens });
  });
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      const [a, b] = [all[i], all[j]];
      if (a.pointer === b.pointer) {
        problems.push(`\`${a.pointer}\` is in both \`set\` and \`remove\`; keep it in one of them`);
      } else if (isPrefix(a.tokens, b.tokens) || isPrefix(b.tokens, a.tokens)) {
        const [outer, inner] = a.tokens.length < b.tokens.length ? [a, b] : [b, a];
        problems.push(
          `\`${inner.pointer}\` (in \`${inner.field}\`) lies inside \`${outer.pointer}\` (in \`${outer.field}\`); ` +
            'change the outer value as a whole, or use two steps',
        );
      }
    }
  }
  if (set.length === 0 && remove.length === 0) {
    problems.push('nothing to do: give `set` or `remove` (or both) at least one pointer');
  }
  if (problems.length > 0) throw new EditError('invalid-config', problems.join('; '));
  return { file, set, remove, createMissing: config.create_missing };
}

function checkPointer(field, pointer, problems) {
  if (pointer === '') {
    problems.push(`\`${field}\` names the empty pointer (the whole document); json-config changes values inside it`);
    return null;
  }
  try {
    return parsePointer(pointer);
  } catch (reason) {
    problems.push(`\`${field}\` names \`${pointer}\`, which is not a JSON Pointer: ${reason}`);
    return null;
  }
}

function isPrefix(short, long) {
  return short.length < long.length && short.every((t, i) => t === long[i]);
}
