// Unit tests of json-config's pure logic under Node. Run from the repository root:
//   node --import ./sdk/js/test/register.js --test plugins/json-config/test/*.test.js
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { detectStyle, formatPointer, lookup, parse, parsePointer, planEdit, serialize } from '../jsonedit.js';
import { validate } from '../config.js';
import { actionDetail, actionSummary, masks, record, runSummary } from '../report.js';

/** The new text for an edit (the old text when nothing changes). */
function edit(text, request) {
  const { output } = planEdit(text, { set: [], remove: [], ...request }, '/app/c.json');
  return output ?? text;
}

function refusal(text, request) {
  try {
    planEdit(text, { set: [], remove: [], ...request }, '/app/c.json');
  } catch (e) {
    return `${e.kind}: ${e.message}`;
  }
  assert.fail('expected the edit to be refused');
}

const NESTED = '{\n  "features": {\n    "insight_generation": {\n      "enabled": true\n    }\n  },\n  "beta": 1\n}\n';

test('pointers decode ~1 and ~0 in that order', () => {
  assert.deepEqual(parsePointer('/a~1b/c~0d/~01'), ['a/b', 'c~d', '~1']);
  assert.deepEqual(parsePointer(''), []);
  assert.deepEqual(parsePointer('/'), ['']);
  assert.equal(formatPointer(['a/b', 'c~d', '~1']), '/a~1b/c~0d/~01');
  assert.throws(() => parsePointer('a/b'));
  assert.throws(() => parsePointer('/a~2'));
  assert.throws(() => parsePointer('/a~'));
});

test('a nested value changes and nothing else does', () => {
  assert.equal(edit(NESTED, { set: [['/features/insight_generation/enabled', false]] }), NESTED.replace('true', 'false'));
});

test('indentation of every kind survives a change', () => {
  for (const indent of ['  ', '    ', '\t']) {
    const text = `{\n${indent}"a": {\n${indent}${indent}"b": 1\n${indent}},\n${indent}"c": [1, 2]\n}`;
    assert.equal(edit(text, { set: [['/a/b', 2]] }), text.replace('"b": 1', '"b": 2'));
  }
});

test('new keys and values follow the file indentation and line endings', () => {
  assert.equal(
    edit('{\n    "a": 1\n}\n', { set: [['/b', { c: [1] }]], createMissing: true }),
    '{\n    "a": 1,\n    "b": {\n        "c": [\n            1\n        ]\n    }\n}\n',
  );
  assert.equal(
    edit('{\n\t"a": {}\n}', { set: [['/a/x', true]], createMissing: true }),
    '{\n\t"a": {\n\t\t"x": true\n\t}\n}',
  );
  assert.equal(edit('{\r\n  "a": 1\r\n}\r\n', { set: [['/b', 2]], createMissing: true }), '{\r\n  "a": 1,\r\n  "b": 2\r\n}\r\n');
});

test('one-line documents stay on one line, with their own spacing', () => {
  assert.equal(edit('{"a":1}', { set: [['/b', { c: 2 }]], createMissing: true }), '{"a":1,"b":{"c":2}}');
  assert.equal(edit('{"a": 1, "b": 2}', { set: [['/c', [1, 2]]], createMissing: true }), '{"a": 1, "b": 2, "c": [1, 2]}');
  assert.equal(edit('{}', { set: [['/a', 1]], createMissing: true }), '{"a": 1}');
});

test('arrays: by index, appended with -, in inline and multi-line layouts', () => {
  const text = '{\n  "items": [\n    {"name": "a"},\n    {"name": "b"}\n  ],\n  "tags": ["x", "y"]\n}';
  assert.equal(edit(text, { set: [['/items/1/name', 'B']] }), text.replace('"b"', '"B"'));
  assert.equal(edit(text, { set: [['/tags/-', 'z']] }), text.replace('"y"]', '"y", "z"]'));
  assert.equal(
    edit(text, { set: [['/items/-', { name: 'c' }]] }),
    text.replace('{"name": "b"}\n', '{"name": "b"},\n    {\n      "name": "c"\n    }\n'),
  );
  assert.equal(edit('{"a": []}', { set: [['/a/-', 1]] }), '{"a": [1]}');
});

test('removing entries takes their separators with them', () => {
  assert.equal(edit(NESTED, { remove: ['/beta'] }), '{\n  "features": {\n    "insight_generation": {\n      "enabled": true\n    }\n  }\n}\n');
  assert.equal(edit('{\n  "a": 1,\n  "b": 2,\n  "c": 3\n}', { remove: ['/a'] }), '{\n  "b": 2,\n  "c": 3\n}');
  assert.equal(edit('{\n  "a": 1,\n  "b": 2,\n  "c": 3\n}', { remove: ['/b'] }), '{\n  "a": 1,\n  "c": 3\n}');
  assert.equal(edit('{\n  "only": 1\n}\n', { remove: ['/only'] }), '{}\n');
  assert.equal(edit('[1, 2, 3, 4]', { remove: ['/0', '/2'] }), '[2, 4]');
});

test('pointers refer to the document before the edit, and `at` says where values end up', () => {
  const { output, changes } = planEdit('{"items": ["a", "b", "c"]}', {
    set: [
      ['/items/2', 'C'],
      ['/items/-', 'd'],
    ],
    remove: ['/items/0'],
  });
  assert.equal(output, '{"items": ["b", "C", "d"]}');
  assert.deepEqual(
    changes.map((c) => [c.pointer, c.action, c.at]),
    [
      ['/items/2', 'set', '/items/1'],
      ['/items/-', 'created', '/items/2'],
      ['/items/0', 'removed', '/items/0'],
    ],
  );
});

test('escaped pointers reach keys holding / and ~', () => {
  assert.equal(edit('{"a/b": 1, "m~n": {"~1": 2}}', { set: [['/a~1b', 10], ['/m~0n/~01', 20]] }), '{"a/b": 10, "m~n": {"~1": 20}}');
});

test('untouched values keep their exact spelling', () => {
  const text = '{"n": 1.0e2, "s": "\\u00e9\\/", "big": 12345678901234567890, "flag": true}';
  assert.equal(edit(text, { set: [['/flag', false]] }), text.replace('true', 'false'));
  // A value equal to the requested one is left as written: nothing to do.
  assert.equal(planEdit(text, { set: [['/n', 100]] }).output, null);
});

test('a byte order mark and a missing final newline are kept', () => {
  assert.equal(edit('\uFEFF{"a": 1}', { set: [['/a', 2]] }), '\uFEFF{"a": 2}');
  assert.equal(edit('{"a": 1}\n\n', { set: [['/a', 2]] }), '{"a": 2}\n\n');
});

test('missing keys are refused unless create_missing, which creates parents as objects', () => {
  assert.match(refusal(NESTED, { set: [['/features/other/enabled', false]] }), /^precondition: `\/features\/other\/enabled` does not exist in `\/app\/c.json`: `\/features` has no key `other` \(a parent of the value\); set `create_missing = true`/);
  assert.match(refusal(NESTED, { set: [['/gamma', 1]] }), /the top-level value has no key `gamma`; set `create_missing = true`/);
  const { output, changes } = planEdit(NESTED, {
    set: [
      ['/features/other/enabled', false],
      ['/features/other/level', 3],
    ],
    createMissing: true,
  });
  assert.equal(
    output,
    '{\n  "features": {\n    "insight_generation": {\n      "enabled": true\n    },\n    "other": {\n      "enabled": false,\n      "level": 3\n    }\n  },\n  "beta": 1\n}\n',
  );
  assert.equal(changes[0].creates, '/features/other');
});

test('appending to a missing array with create_missing creates the array', () => {
  const { output, changes } = planEdit('{"a": 1}', { set: [['/list/-', 'x'], ['/b/c/-', 2]], createMissing: true });
  assert.equal(output, '{"a": 1, "list": ["x"], "b": {"c": [2]}}');
  assert.deepEqual(
    changes.map((c) => [c.at, c.creates]),
    [
      ['/list/0', '/list'],
      ['/b/c/0', '/b'],
    ],
  );
});

test('arrays and scalars in the way are refused with the pointer named', () => {
  assert.match(refusal('{"a": [1]}', { set: [['/a/5', 1]] }), /index 5 is past the end of the array `\/a` .*\(1 elements\); use `-`/);
  assert.match(refusal('{"a": [1]}', { set: [['/a/x', 1]] }), /`\/a` .* is an array \(1 elements\), and `x` is not an index/);
  assert.match(refusal('{"a": [1]}', { set: [['/a/01', 1]] }), /`01` is not an index/);
  assert.match(refusal('{"a": "s"}', { set: [['/a/b', 1]], createMissing: true }), /`\/a` in `\/app\/c.json` is a string, not an object or array/);
});

test('a targeted key that appears twice is refused', () => {
  assert.match(refusal('{"a": 1, "a": 2}', { set: [['/a', 3]] }), /key `a` appears 2 times in the top-level value/);
  // Untargeted duplicates are left alone.
  assert.equal(edit('{"a": 1, "a": 2, "b": 1}', { set: [['/b', 3]] }), '{"a": 1, "a": 2, "b": 3}');
});

test('removing an absent value is not an error', () => {
  const { output, changes } = planEdit('{"a": {"b": 1}, "l": []}', { remove: ['/x', '/a/c', '/x/y', '/l/3'] });
  assert.equal(output, null);
  assert.deepEqual(
    changes.map((c) => c.action),
    ['unchanged', 'unchanged', 'unchanged', 'unchanged'],
  );
});

test('invalid JSON is refused with a line and column', () => {
  assert.match(refusal('{\n  "a": 1,\n}\n', { set: [['/a', 2]] }), /^precondition: `\/app\/c.json` is not valid JSON: line 3, column 1: expected a key in double quotes, found `}`/);
  assert.match(refusal('{"a": 1} // comment', { set: [['/a', 2]] }), /expected the end of the document/);
  assert.match(refusal('', { set: [['/a', 2]] }), /expected a JSON value, found the end of the file/);
});

test('the style of a document is detected', () => {
  const style = (text) => detectStyle(text, parse(text));
  assert.deepEqual(style('{\n    "a": {\n        "b": [1, 2]\n    }\n}'), { newline: '\n', unit: '    ', multiline: true, colon: ': ', comma: ', ' });
  assert.deepEqual(style('{\r\n\t"a": 1\r\n}'), { newline: '\r\n', unit: '\t', multiline: true, colon: ': ', comma: ', ' });
  assert.deepEqual(style('{"a":1,"b":"x, y"}'), { newline: '\n', unit: '  ', multiline: false, colon: ':', comma: ',' });
  assert.equal(serialize({ a: [1, { b: null }] }, style('{\n  "x": 1\n}'), '  ', true), '{\n    "a": [\n      1,\n      {\n        "b": null\n      }\n    ]\n  }');
});

test('lookup follows pointers and notices ambiguous keys', () => {
  const text = '{"a": [{"b": 1}], "d": 1, "d": 2}';
  const root = parse(text);
  assert.deepEqual(lookup(text, root, '/a/0/b'), { found: true, value: 1, line: 1 });
  assert.deepEqual(lookup(text, root, '/a/1'), { found: false });
  assert.deepEqual(lookup(text, root, '/d'), { found: false, ambiguous: true });
});

test('large documents are handled without reading every value', () => {
  const items = Array.from({ length: 20000 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ['a', 'b'] }));
  const text = `${JSON.stringify({ flags: { x: true }, items }, null, 2)}\n`;
  assert.equal(edit(text, { set: [['/flags/x', false]] }), text.replace('"x": true', '"x": false'));
});

// ---------------------------------------------------------------------------
// config.js
// ---------------------------------------------------------------------------

function config(overrides) {
  return { file: '/app/c.json', set: {}, remove: [], create_missing: false, ...overrides };
}

function invalid(overrides) {
  try {
    validate(config(overrides));
  } catch (e) {
    assert.equal(e.kind, 'invalid-config');
    return e.message;
  }
  assert.fail('expected the config to be refused');
}

test('a valid config keeps the order of `set`', () => {
  assert.deepEqual(validate(config({ set: { '/b': 1, '/a': { x: null } }, remove: ['/c'] })), {
    file: '/app/c.json',
    set: [
      ['/b', 1],
      ['/a', { x: null }],
    ],
    remove: ['/c'],
    createMissing: false,
  });
});

test('config problems are all reported at once', () => {
  assert.equal(invalid({}), 'nothing to do: give `set` or `remove` (or both) at least one pointer');
  assert.equal(
    invalid({ file: 'c.json', set: { 'a/b': 1, '': 2 } }),
    '`file` must be an absolute guest path such as `/app/config.json`, not `c.json`; ' +
      '`set` names `a/b`, which is not a JSON Pointer: a JSON Pointer starts with `/`; ' +
      '`set` names the empty pointer (the whole document); json-config changes values inside it',
  );
  assert.match(invalid({ set: { '/a~2': 1 } }), /`~` must be followed by `0`/);
  assert.match(invalid({ set: { '/a/-/b': 1 } }), /`-` \(append\) can only be the last token/);
  assert.match(invalid({ remove: ['/a/-'] }), /`-` names no existing element/);
  assert.match(invalid({ remove: ['/a', '/a'] }), /`remove` lists `\/a` more than once/);
  assert.match(invalid({ set: { '/a': 1 }, remove: ['/a'] }), /`\/a` is in both `set` and `remove`/);
  assert.match(invalid({ set: { '/a': {}, '/a/b': 1 } }), /`\/a\/b` \(in `set`\) lies inside `\/a` \(in `set`\)/);
  assert.match(invalid({ set: { '/ab': 1 }, remove: ['/a', '/a/b'] }), /`\/a\/b` \(in `remove`\) lies inside `\/a` \(in `remove`\)/);
});

// ---------------------------------------------------------------------------
// report.js
// ---------------------------------------------------------------------------

test('plan lines show old and new values as JSON', () => {
  const [change] = planEdit(NESTED, { set: [['/features/insight_generation/enabled', false]] }).changes;
  assert.equal(actionSummary(change, '/app/c.json'), 'set /features/insight_generation/enabled in /app/c.json');
  assert.equal(actionDetail(change), 'line 4: true → false');
  const { changes } = planEdit('{"n": "5", "l": [1]}', { set: [['/n', 5], ['/l/-', 2], ['/new', 'x']], remove: ['/gone'], createMissing: true });
  assert.deepEqual(
    changes.map((c) => `${actionSummary(c, '/f')} | ${actionDetail(c)}`),
    [
      'set /n in /f | line 1: "5" → 5',
      'append to /l in /f | new element 1: 2',
      'add /new to /f | absent → "x"',
      'leave /gone absent from /f | already absent',
    ],
  );
});

test('secret-looking values are masked in plan details and outputs', () => {
  const { changes } = planEdit('{"db": {"password": "hunter2", "url": "postgres://u:pw@db/x"}, "ok": 1}', {
    set: [
      ['/db/password', 's3cret'],
      ['/db/url', 'postgres://db/y'],
      ['/ok', { apiKey: 'k' }],
    ],
  });
  const shown = JSON.stringify([changes.map(actionDetail), changes.map(record)]);
  for (const secret of ['hunter2', 's3cret', 'pw@', '"k"']) assert.ok(!shown.includes(secret), `${secret} in ${shown}`);
  assert.ok(masks({ pointer: '/auth/enabled', old: true, new: false }));
  assert.ok(!masks({ pointer: '/features/enabled', old: true, new: false }));
});

test('outputs record changes with JSON values and null for absent', () => {
  const { changes } = planEdit('{"a": 1, "l": ["x", "y"]}', { set: [['/a', 2], ['/b', null]], remove: ['/l/0'], createMissing: true });
  assert.deepEqual(changes.map(record), [
    { pointer: '/a', action: 'set', old: 1, new: 2, line: 1 },
    { pointer: '/b', action: 'created', old: null, new: null, line: null },
    { pointer: '/l/0', action: 'removed', old: 'x', new: null, line: 1, array_element: true },
  ]);
  assert.equal(runSummary(changes, '/f', '/f.bak'), 'changed 3 values in /f (safety copy /f.bak)');
  assert.equal(runSummary(changes, '/f', null), 'no change needed: /f already has the requested values; nothing was written');
});

// ---------------------------------------------------------------------------
// Random edits (seeded): every edit the document can take is computed
// without tripping the self-check that the new text means exactly the
// requested change, in every layout.
// ---------------------------------------------------------------------------

test('random edits in every layout pass the self-check', () => {
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const pick = (list) => list[Math.floor(random() * list.length)];
  const value = (depth) => {
    const r = random();
    if (depth > 3 || r < 0.3) return pick([1, 2.5, 'x', 'a/b~c', true, false, null, -3]);
    if (r < 0.65) {
      const object = {};
      for (let i = Math.floor(random() * 4); i > 0; i--) object[pick(['a', 'b', 'c/d', 'e~f', 'g', '0'])] = value(depth + 1);
      return object;
    }
    return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
  };
  const paths = (v, prefix = []) =>
    v !== null && typeof v === 'object'
      ? [prefix, ...Object.keys(v).flatMap((k) => paths(v[k], [...prefix, k]))]
      : [prefix];
  let applied = 0;
  for (let round = 0; round < 1000; round++) {
    const doc = { root: value(0), x: value(1) };
    const text = JSON.stringify(doc, null, pick([0, 2, 4, '\t'])).replace(/\n/g, pick(['\n', '\r\n'])) + pick(['', '\n']);
    const chosen = [];
    for (let k = 0; k < 3; k++) {
      let path = pick(paths(doc).filter((p) => p.length > 0));
      if (random() < 0.3) path = [...path, pick(['new', '-', 'z'])];
      const overlaps = (a, b) => a.every((t, i) => b[i] === t);
      if (!chosen.some((q) => overlaps(q, path) || overlaps(path, q))) chosen.push(path);
    }
    const set = [];
    const remove = [];
    for (const path of chosen) {
      if (path[path.length - 1] !== '-' && random() < 0.4) remove.push(formatPointer(path));
      else set.push([formatPointer(path), value(2)]);
    }
    try {
      planEdit(text, { set, remove, createMissing: random() < 0.7 });
      applied++;
    } catch (e) {
      assert.equal(e.kind, 'precondition', `${e.message}\n${JSON.stringify({ text, set, remove })}`);
    }
  }
  assert.ok(applied > 500, `only ${applied} edits applied`);
});

test('each config problem names its key by JSON pointer', () => {
  const pointers = (overrides) => {
    try {
      validate(config(overrides));
    } catch (e) {
      assert.equal(e.kind, 'invalid-config');
      return e.problems.map((p) => p.pointer ?? null);
    }
    assert.fail('expected the config to be refused');
  };
  assert.deepEqual(pointers({ file: 'c.json', set: { '/a': 1 } }), ['/file']);
  assert.deepEqual(pointers({ set: { '/a': 1, 'a/b': 2 } }), ['/set/a~1b']);
  assert.deepEqual(pointers({ set: { '/a/-/b': 1 } }), ['/set/~1a~1-~1b']);
  assert.deepEqual(pointers({ remove: ['/a', '/b', '/a'] }), ['/remove/2']);
  assert.deepEqual(pointers({ remove: ['/a', 7] }), ['/remove/1']);
  // Two pointers that collide: at the one the message names first.
  assert.deepEqual(pointers({ set: { '/a': 1 }, remove: ['/a'] }), ['/set/~1a']);
  assert.deepEqual(pointers({ set: { '/a': 1 }, remove: ['/a/b'] }), ['/remove/0']);
  // Nothing to do is about the table as a whole.
  assert.deepEqual(pointers({}), [null]);
});
