// Unit tests of backout-sdk.js's pure parts under Node (the file helpers run
// against wasi:filesystem and are tested through the host by the e2e tests).
// Run: node --import ./sdk/js/test/register.js --test sdk/js/test/*.test.js
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import {
  FsError,
  MAX_CHECKPOINT_BYTES,
  StepError,
  checkpoint,
  count,
  defineStep,
  encodeProblems,
  fs,
  invalidConfig,
  log,
  parseConfig,
  plural,
  resolveGuestPath,
  sha256Hex,
  splitPath,
  toStepError,
  utcStamp,
  utf8Decode,
} from '../backout-sdk.js';
import { stub } from './host-stub.js';

const SCHEMA = {
  type: 'object',
  properties: {
    file: { type: 'string' },
    set: { type: 'object', default: {} },
    remove: { type: 'array', default: [] },
    create_missing: { type: 'boolean', default: false },
  },
  required: ['file'],
  additionalProperties: false,
};

test('parseConfig applies defaults and keeps given values', () => {
  const config = parseConfig('{"file": "/app/c.json", "set": {"/a": 1}}', SCHEMA);
  assert.deepEqual(config, { file: '/app/c.json', set: { '/a': 1 }, remove: [], create_missing: false });
});

test('parseConfig defaults are fresh copies', () => {
  const a = parseConfig('{"file": "/a"}', SCHEMA);
  a.remove.push('/x');
  assert.deepEqual(parseConfig('{"file": "/a"}', SCHEMA).remove, []);
});

test('parseConfig refuses unknown keys, missing keys and wrong types, all at once', () => {
  assert.throws(
    () => parseConfig('{"sett": {}, "create_missing": "yes"}', SCHEMA),
    (e) =>
      e instanceof StepError &&
      e.kind === 'invalid-config' &&
      e.message ===
        'unknown field `sett`, expected one of `file`, `set`, `remove`, `create_missing`; missing field `file`; ' +
          '`create_missing` must be a boolean, not a string',
  );
});

test('config errors name their keys by JSON pointer on the wire', () => {
  let caught;
  try {
    parseConfig('{"sett": {}, "create_missing": "yes"}', SCHEMA);
  } catch (e) {
    caught = e;
  }
  assert.deepEqual(toStepError(caught), {
    tag: 'invalid-config',
    val:
      'missing field `file`; `#/sett`: unknown field `sett`, expected one of `file`, `set`, `remove`, `create_missing`; ' +
      '`#/create_missing`: `create_missing` must be a boolean, not a string',
  });
  assert.deepEqual(toStepError(invalidConfig('`url` is bad', '/checks/1/url')), {
    tag: 'invalid-config',
    val: '`#/checks/1/url`: `url` is bad',
  });
  assert.equal(encodeProblems([{ pointer: '/set/A `B`', message: 'm' }]), '`#/set/A%20%60B%60`: m');
  assert.equal(encodeProblems([{ pointer: '/a~1b/é', message: 'm' }]), '`#/a~1b/%C3%A9`: m');
  assert.deepEqual(toStepError(invalidConfig('whole')), { tag: 'invalid-config', val: 'whole' });
});

test('parseConfig refuses a config that is not a table or not JSON', () => {
  assert.throws(() => parseConfig('[1]', SCHEMA), /the config must be a table, not an array/);
  assert.throws(() => parseConfig('{', SCHEMA), (e) => e.kind === 'invalid-config' && /not valid JSON/.test(e.message));
});

test('toStepError keeps the kind of step errors and makes anything else `failed`', () => {
  assert.deepEqual(toStepError(new StepError('precondition', 'p')), { tag: 'precondition', val: 'p' });
  assert.deepEqual(toStepError({ kind: 'transient', message: 't' }), { tag: 'transient', val: 't' });
  assert.deepEqual(toStepError(new TypeError('boom')), { tag: 'failed', val: 'unexpected error in the plugin: boom' });
  assert.deepEqual(toStepError('text'), { tag: 'failed', val: 'unexpected error in the plugin: text' });
  assert.throws(() => new StepError('oops', 'x'), TypeError);
});

function sampleStep(overrides = {}) {
  return defineStep({
    name: 'sample',
    version: '1.2.3',
    summary: 'a sample',
    schema: SCHEMA,
    needs: { files: 'read-write' },
    plan: (c) => [{ summary: `edit ${c.file}` }, { summary: 'detail', detail: 'x' }],
    run: async (c) => ({ summary: 'ran', outputs: { file: c.file } }),
    verify: () => {},
    undo: (c, o) => ({ summary: 'undone', outputs: o }),
    ...overrides,
  });
}

test('defineStep describes the step with its schema as JSON text', () => {
  const info = sampleStep().describe();
  assert.equal(info.name, 'sample');
  assert.equal(info.version, '1.2.3');
  assert.deepEqual(info.needs, { files: 'read-write', env: [], network: false });
  assert.deepEqual(JSON.parse(info.configSchema), SCHEMA);
});

test('defineStep returns explicit results with serialized outputs', async () => {
  const step = sampleStep();
  assert.deepEqual(await step.plan('{"file": "/a"}'), {
    tag: 'ok',
    val: [
      { summary: 'edit /a', detail: undefined, effect: 'change' },
      { summary: 'detail', detail: 'x', effect: 'change' },
    ],
  });
  assert.deepEqual(await step.run('{"file": "/a"}'), { tag: 'ok', val: { summary: 'ran', outputs: '{"file":"/a"}' } });
  assert.deepEqual(await step.verify('{"file": "/a"}', '{}'), { tag: 'ok', val: undefined });
  assert.deepEqual(await step.undo('{"file": "/a"}', '{"k": 1}'), { tag: 'ok', val: { summary: 'undone', outputs: '{"k":1}' } });
});

test('an action says its effect; none is a change, and a misspelt one is the plugin failing', async () => {
  const planning = (actions) => sampleStep({ plan: () => actions });
  const effects = await planning([
    { summary: 'a' },
    { summary: 'b', effect: 'check' },
    { summary: 'c', effect: 'in-place' },
  ]).plan('{"file": "/a"}');
  assert.deepEqual(effects.val.map((a) => a.effect), ['change', 'check', 'in-place']);
  assert.deepEqual(await planning([{ summary: 'a', effect: 'in_place' }]).plan('{"file": "/a"}'), {
    tag: 'err',
    val: { tag: 'failed', val: 'plan returned an action with the effect "in_place"; use one of change, check, in-place' },
  });
});

test('defineStep turns thrown errors into step errors instead of trapping', async () => {
  const step = sampleStep({
    plan: () => {
      throw new StepError('precondition', 'not there');
    },
    run: () => {
      throw new RangeError('bug');
    },
  });
  assert.deepEqual(await step.plan('{"file": "/a"}'), { tag: 'err', val: { tag: 'precondition', val: 'not there' } });
  assert.deepEqual(await step.run('{"file": "/a"}'), { tag: 'err', val: { tag: 'failed', val: 'unexpected error in the plugin: bug' } });
  assert.deepEqual(await step.plan('{"fil": "/a"}'), {
    tag: 'err',
    val: { tag: 'invalid-config', val: 'missing field `file`; `#/fil`: unknown field `fil`, expected one of `file`, `set`, `remove`, `create_missing`' },
  });
  assert.deepEqual(await step.verify('{"file": "/a"}', '[]'), {
    tag: 'err',
    val: { tag: 'invalid-config', val: 'the outputs given back to the step must be a JSON object, not an array' },
  });
});

test('log calls the host with the level', () => {
  stub.logs.length = 0;
  log.info('hello');
  log.warn(3);
  assert.deepEqual(stub.logs, [
    ['info', 'hello'],
    ['warn', '3'],
  ]);
});

test('sha256Hex matches the FIPS 180-2 vectors and node:crypto', async () => {
  assert.equal(await sha256Hex(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(await sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(
    await sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  );
  const bytes = new Uint8Array(1_000_000).fill(0x61);
  assert.equal(await sha256Hex(bytes), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
  const mixed = new TextEncoder().encode('é\u{1F600}\r\n');
  assert.equal(await sha256Hex(mixed), createHash('sha256').update(mixed).digest('hex'));
});

test('utcStamp formats like the Rust SDK', () => {
  assert.equal(utcStamp(0), '19700101T000000Z');
  assert.equal(utcStamp(1_795_432_721_000), '20261123T111841Z');
  assert.equal(utcStamp(951_782_400_000), '20000229T000000Z');
});

test('utf8Decode refuses invalid UTF-8 and keeps a byte order mark', () => {
  assert.throws(() => utf8Decode(new Uint8Array([0x7b, 0xff, 0x7d])), TypeError);
  assert.equal(utf8Decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])), '\uFEFF{}');
});

test('resolveGuestPath finds the innermost grant and the relative path', () => {
  const roots = ['/app', '/app/data/', '/srv'];
  assert.deepEqual(resolveGuestPath('/app/conf/x.json', roots), { root: '/app', relative: 'conf/x.json', path: '/app/conf/x.json' });
  assert.deepEqual(resolveGuestPath('/app/data/db', roots), { root: '/app/data', relative: 'db', path: '/app/data/db' });
  assert.deepEqual(resolveGuestPath('/app//./x', roots), { root: '/app', relative: 'x', path: '/app/x' });
  assert.deepEqual(resolveGuestPath('/srv', roots).relative, '.');
});

test('resolveGuestPath refuses relative paths, `..` and paths outside every grant', () => {
  const code = (path) => {
    try {
      resolveGuestPath(path, ['/app']);
      return 'ok';
    } catch (e) {
      assert.ok(e instanceof FsError);
      return e.code;
    }
  };
  assert.equal(code('app/x'), 'invalid-path');
  assert.equal(code('/app/../etc/passwd'), 'invalid-path');
  assert.equal(code('/application/x'), 'not-granted');
  assert.equal(code('/etc/passwd'), 'not-granted');
});

test('splitPath names the directory and the file', () => {
  assert.deepEqual(splitPath('/app/conf/x.json'), { dir: '/app/conf', name: 'x.json' });
  assert.deepEqual(splitPath('/x.json'), { dir: '/', name: 'x.json' });
});

test('checkpoint hands the outputs to the host as JSON', () => {
  stub.checkpoints.length = 0;
  checkpoint({ file: '/app/c.json', safety_copy: '/app/c.json.backout-20261123T111841Z.bak' });
  assert.deepEqual(stub.checkpoints, ['{"file":"/app/c.json","safety_copy":"/app/c.json.backout-20261123T111841Z.bak"}']);
});

test('checkpoint refuses outputs that are not an object or too large, without calling the host', () => {
  stub.checkpoints.length = 0;
  assert.throws(
    () => checkpoint([1]),
    (e) =>
      e instanceof StepError &&
      e.kind === 'failed' &&
      e.message ===
        'cannot record a checkpoint before changing anything: the outputs must be a plain object, not an array; nothing was changed',
  );
  assert.throws(() => checkpoint({ big: 'x'.repeat(MAX_CHECKPOINT_BYTES) }), /more than the 1048576 allowed; nothing was changed/);
  assert.deepEqual(stub.checkpoints, []);
});

test('a checkpoint the host refuses is a failed step error saying nothing was changed', () => {
  const saved = stub.checkpoint;
  stub.checkpoint = () => {
    throw { payload: 'the journal cannot be written' };
  };
  try {
    assert.throws(
      () => checkpoint({ a: 1 }),
      (e) =>
        e.kind === 'failed' &&
        e.message === 'cannot record a checkpoint before changing anything: the journal cannot be written; nothing was changed',
    );
  } finally {
    stub.checkpoint = saved;
  }
});

test('temporaryFile declares the path to the host and reports a refusal as an FsError', () => {
  stub.temporaryFiles.length = 0;
  fs.temporaryFile('/app/.c.json.backout-tmp-1');
  assert.deepEqual(stub.temporaryFiles, ['/app/.c.json.backout-tmp-1']);
  const saved = stub.temporaryFile;
  stub.temporaryFile = () => {
    throw { payload: 'not inside a read-write grant' };
  };
  try {
    assert.throws(
      () => fs.temporaryFile('/etc/x'),
      (e) =>
        e instanceof FsError &&
        e.code === 'not-permitted' &&
        e.message === 'the host did not accept `/etc/x` as a temporary file: not inside a read-write grant',
    );
  } finally {
    stub.temporaryFile = saved;
  }
});

test('count says the number and the noun, plural unless one', () => {
  assert.equal(count(1, 'key'), '1 key');
  assert.equal(count(0, 'key'), '0 keys');
  assert.equal(count(2, 'value'), '2 values');
  assert.equal(count(2, 'entry'), '2 entries');
  assert.equal(count(3, 'match'), '3 matches');
  assert.equal(count(2, 'box'), '2 boxes');
  assert.equal(plural('day'), 'days');
  assert.equal(plural('copy'), 'copies');
  assert.equal(plural('y'), 'ys');
});
