// The SDK's file helpers under Node, over a stand-in for wasi:filesystem that
// maps a guest directory onto a real temporary directory: what the helpers
// declare to the host, which names they create, and what they leave behind.
// (The e2e tests run the same helpers inside a component, through the host.)
// Run: node --import ./sdk/js/test/register.js --test sdk/js/test/*.test.js
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import nodeFs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { fs } from '../backout-sdk.js';
import { stub } from './host-stub.js';

const ERRNO = {
  ENOENT: 'no-entry',
  EEXIST: 'exist',
  EISDIR: 'is-directory',
  ENOTDIR: 'not-directory',
  EACCES: 'access',
  EPERM: 'not-permitted',
  ENOTSUP: 'unsupported',
};

/** Runs a Node fs call, throwing its error as componentize-js throws a wasi error code. */
function wasi(call) {
  try {
    return call();
  } catch (e) {
    if (e.code in ERRNO) throw { payload: ERRNO[e.code] };
    throw e;
  }
}

/**
 * Called with `fstat` of the file before every write through a descriptor,
 * when set: what a reader would find at the moment a byte is written.
 */
let beforeWrite = null;

/** A descriptor for an open file: positional reads and writes, sync. */
class File {
  constructor(fd) {
    this.fd = fd;
  }
  read(length, offset) {
    const buf = Buffer.alloc(Number(length));
    const n = wasi(() => nodeFs.readSync(this.fd, buf, 0, buf.length, Number(offset)));
    return [new Uint8Array(buf.subarray(0, n)), n === 0];
  }
  write(bytes, offset) {
    beforeWrite?.(nodeFs.fstatSync(this.fd));
    return BigInt(wasi(() => nodeFs.writeSync(this.fd, bytes, 0, bytes.length, Number(offset))));
  }
  sync() {
    wasi(() => nodeFs.fsyncSync(this.fd));
  }
  [Symbol.dispose]() {
    if (this.fd !== null) nodeFs.closeSync(this.fd);
    this.fd = null;
  }
}

/** A descriptor for a directory: the `*-at` calls the SDK uses. */
class Dir {
  constructor(root) {
    this.root = root;
  }
  at(relative) {
    return path.join(this.root, relative);
  }
  statAt(_flags, relative) {
    const s = wasi(() => nodeFs.lstatSync(this.at(relative)));
    const type = s.isFile() ? 'regular-file' : s.isDirectory() ? 'directory' : s.isSymbolicLink() ? 'symbolic-link' : 'unknown';
    return { type, size: BigInt(s.size), linkCount: BigInt(s.nlink) };
  }
  openAt(_pathFlags, relative, openFlags, descriptorFlags) {
    if (openFlags.directory) return new Dir(this.at(relative));
    let flags = descriptorFlags.write ? 'r+' : 'r';
    if (openFlags.create) flags = openFlags.exclusive ? 'wx' : 'w';
    return new File(wasi(() => nodeFs.openSync(this.at(relative), flags)));
  }
  unlinkFileAt(relative) {
    wasi(() => nodeFs.unlinkSync(this.at(relative)));
  }
  renameAt(relative, other, otherRelative) {
    wasi(() => nodeFs.renameSync(this.at(relative), other.at(otherRelative)));
  }
  linkAt(_flags, relative, other, otherRelative) {
    if (stub.linksUnsupported) throw { payload: 'unsupported' };
    wasi(() => nodeFs.linkSync(this.at(relative), other.at(otherRelative)));
  }
  readlinkAt(relative) {
    return wasi(() => nodeFs.readlinkSync(this.at(relative)));
  }
  sync() {}
  [Symbol.dispose]() {}
}

// The SDK reads the grants once per instance (one test file = one process).
const host = nodeFs.mkdtempSync(path.join(os.tmpdir(), 'backout-sdk-js-fs-'));
stub.preopens = [[new Dir(host), '/app']];
process.on('exit', () => nodeFs.rmSync(host, { recursive: true, force: true }));

let n = 0;
/** A fresh guest directory under /app: `{ guest, host }`. */
function freshDir() {
  n += 1;
  nodeFs.mkdirSync(path.join(host, `t${n}`));
  return { guest: `/app/t${n}`, host: path.join(host, `t${n}`) };
}

const names = (dir) => nodeFs.readdirSync(dir).sort();

/** The host path of a guest path under /app. */
const onHost = (guest) => path.join(host, guest.slice('/app/'.length));

// The host's file operations, done for real on the mapped paths; a copy
// counts as a write for `observed` (what a reader finds when it starts).
stub.copyFile = (source, target) => {
  beforeWrite?.(nodeFs.statSync(onHost(target)));
  nodeFs.copyFileSync(onHost(source), onHost(target));
  return BigInt(nodeFs.statSync(onHost(target)).size);
};
stub.sha256File = (guest) => createHash('sha256').update(nodeFs.readFileSync(onHost(guest))).digest('hex');

/** Permission bits in octal, as `ls -l` thinks of them: `'600'`. */
const octal = (mode) => (mode & 0o777).toString(8);

/**
 * Runs `f` with the host's copy-permissions done for real (the mode, as the
 * host copies it; the owner is the same in a test) and every write
 * observed: returns what `f` returns and `[size, mode]` of the file at each
 * write, and each copy-permissions call.
 */
function observed(f) {
  const seen = { writes: [], copies: [] };
  const saved = stub.copyPermissions;
  stub.copyPermissions = (source, target) => {
    seen.copies.push([source, target]);
    nodeFs.chmodSync(onHost(target), nodeFs.statSync(onHost(source)).mode & 0o777);
  };
  beforeWrite = (s) => seen.writes.push([s.size, octal(s.mode)]);
  try {
    return { result: f(), ...seen };
  } finally {
    stub.copyPermissions = saved;
    beforeWrite = null;
  }
}

test('safetyCopy writes a declared temporary file and only then gives it the .bak name', () => {
  const dir = freshDir();
  nodeFs.writeFileSync(path.join(dir.host, 'c.json'), '{"a": 1}\n');
  stub.temporaryFiles.length = 0;
  const copy = fs.safetyCopy(`${dir.guest}/c.json`);
  assert.match(copy, /^\/app\/t\d+\/c\.json\.backout-\d{8}T\d{6}Z\.bak$/);
  assert.equal(stub.temporaryFiles.length, 1);
  assert.match(stub.temporaryFiles[0], /^\/app\/t\d+\/\.c\.json\.backout-tmp-[0-9a-f]+-0$/);
  assert.deepEqual(names(dir.host), ['c.json', path.basename(copy)], 'no temporary file is left');
  assert.equal(nodeFs.readFileSync(path.join(dir.host, path.basename(copy)), 'utf8'), '{"a": 1}\n');
});

test('copyFile and sha256File go to the host, and refuse a missing file or a directory first', () => {
  const dir = freshDir();
  nodeFs.writeFileSync(path.join(dir.host, 'backup.db'), 'backup bytes');
  nodeFs.writeFileSync(path.join(dir.host, 'staged.db'), 'a longer earlier content');
  assert.equal(fs.copyFile(`${dir.guest}/backup.db`, `${dir.guest}/staged.db`), 12);
  assert.equal(nodeFs.readFileSync(path.join(dir.host, 'staged.db'), 'utf8'), 'backup bytes');
  assert.equal(fs.sha256File(`${dir.guest}/staged.db`), createHash('sha256').update('backup bytes').digest('hex'));
  assert.throws(() => fs.copyFile(`${dir.guest}/missing`, `${dir.guest}/x`), (e) => e.code === 'no-entry');
  assert.throws(() => fs.sha256File(dir.guest), (e) => e.code === 'is-directory');
  const saved = stub.copyFile;
  stub.copyFile = () => {
    throw { payload: '`copy-file` is refused during `plan`: nothing may change' };
  };
  try {
    assert.throws(() => fs.copyFile(`${dir.guest}/backup.db`, `${dir.guest}/x`), /refused during `plan`/);
  } finally {
    stub.copyFile = saved;
  }
});

test('safetyCopy never replaces an existing copy, with or without hard links', () => {
  for (const unsupported of [false, true]) {
    const dir = freshDir();
    nodeFs.writeFileSync(path.join(dir.host, 'c.json'), 'new');
    stub.linksUnsupported = unsupported;
    try {
      const first = fs.safetyCopy(`${dir.guest}/c.json`);
      nodeFs.writeFileSync(path.join(dir.host, path.basename(first)), 'older copy');
      // The clock in the stub stands still: the second copy gets the same stamp.
      const second = fs.safetyCopy(`${dir.guest}/c.json`);
      assert.equal(second, first.replace(/\.bak$/, '-1.bak'));
      assert.equal(nodeFs.readFileSync(path.join(dir.host, path.basename(first)), 'utf8'), 'older copy');
      assert.equal(nodeFs.readFileSync(path.join(dir.host, path.basename(second)), 'utf8'), 'new');
      assert.equal(names(dir.host).length, 3, `no temporary file is left: ${names(dir.host)}`);
    } finally {
      stub.linksUnsupported = false;
    }
  }
});

test('replaceAtomically declares its temporary file and leaves none', () => {
  const dir = freshDir();
  nodeFs.writeFileSync(path.join(dir.host, 'c.json'), '{}');
  stub.temporaryFiles.length = 0;
  fs.replaceAtomically(`${dir.guest}/c.json`, '{"a": 1}');
  assert.equal(nodeFs.readFileSync(path.join(dir.host, 'c.json'), 'utf8'), '{"a": 1}');
  assert.equal(stub.temporaryFiles.length, 1);
  assert.deepEqual(names(dir.host), ['c.json']);
});

test('a temporary file the host refuses is never created', () => {
  const dir = freshDir();
  nodeFs.writeFileSync(path.join(dir.host, 'c.json'), '{}');
  const saved = stub.temporaryFile;
  stub.temporaryFile = () => {
    throw { payload: 'not inside a read-write grant' };
  };
  try {
    assert.throws(() => fs.replaceAtomically(`${dir.guest}/c.json`, 'x'), /as a temporary file: not inside a read-write grant/);
    assert.throws(() => fs.safetyCopy(`${dir.guest}/c.json`), /as a temporary file/);
  } finally {
    stub.temporaryFile = saved;
  }
  assert.deepEqual(names(dir.host), ['c.json']);
  assert.equal(nodeFs.readFileSync(path.join(dir.host, 'c.json'), 'utf8'), '{}');
});

test('a safetyCopy of a 0600 file is 0600 before its first byte is written', () => {
  const dir = freshDir();
  nodeFs.writeFileSync(path.join(dir.host, '.env'), 'API_KEY=s3cret\n', { mode: 0o600 });
  const { result: copy, writes, copies } = observed(() => fs.safetyCopy(`${dir.guest}/.env`));
  assert.deepEqual(writes, [[0, '600']], '[bytes in the temporary file, its mode] at each write');
  assert.equal(copies.length, 1);
  assert.equal(copies[0][0], `${dir.guest}/.env`);
  assert.equal(octal(nodeFs.statSync(onHost(copy)).mode), '600');
});

test('a replaceAtomically of a 0600 file writes into a file that is already 0600', () => {
  const dir = freshDir();
  const file = path.join(dir.host, 'c.json');
  nodeFs.writeFileSync(file, '{}', { mode: 0o600 });
  const { writes } = observed(() => fs.replaceAtomically(`${dir.guest}/c.json`, '{"password": "s3cret"}'));
  assert.deepEqual(writes, [[0, '600']], '[bytes in the temporary file, its mode] at each write');
  assert.equal(octal(nodeFs.statSync(file).mode), '600');
  assert.equal(nodeFs.readFileSync(file, 'utf8'), '{"password": "s3cret"}');
});

test('a temporary file that cannot get the permissions gets no byte and is removed', () => {
  const dir = freshDir();
  nodeFs.writeFileSync(path.join(dir.host, 'c.json'), '{}', { mode: 0o600 });
  const saved = stub.copyPermissions;
  stub.copyPermissions = () => {
    throw { payload: 'only root may give a file to another user' };
  };
  const writes = [];
  beforeWrite = (s) => writes.push(s.size);
  try {
    assert.throws(() => fs.replaceAtomically(`${dir.guest}/c.json`, 'x'), /only root may give a file/);
    assert.throws(() => fs.safetyCopy(`${dir.guest}/c.json`), /only root may give a file/);
  } finally {
    stub.copyPermissions = saved;
    beforeWrite = null;
  }
  assert.deepEqual(writes, [], 'nothing was written');
  assert.deepEqual(names(dir.host), ['c.json'], 'no temporary file is left');
  assert.equal(nodeFs.readFileSync(path.join(dir.host, 'c.json'), 'utf8'), '{}');
});

test('a replaceAtomically creating a new file gives it the default mode from the start', () => {
  const dir = freshDir();
  const probe = path.join(dir.host, 'probe');
  nodeFs.writeFileSync(probe, '');
  const defaultMode = octal(nodeFs.statSync(probe).mode);
  nodeFs.unlinkSync(probe);
  const { writes, copies } = observed(() => fs.replaceAtomically(`${dir.guest}/new.json`, '{}'));
  assert.deepEqual(copies, [], 'nothing to take permissions from');
  assert.deepEqual(writes, [[0, defaultMode]]);
  assert.equal(octal(nodeFs.statSync(path.join(dir.host, 'new.json')).mode), defaultMode);
});

test('renameNoClobber refuses an existing target and keeps both files', () => {
  const dir = freshDir();
  nodeFs.writeFileSync(path.join(dir.host, '.temp'), 'new');
  nodeFs.writeFileSync(path.join(dir.host, 'final'), 'old');
  assert.throws(() => fs.renameNoClobber(`${dir.guest}/.temp`, `${dir.guest}/final`), (e) => e.code === 'exist');
  assert.deepEqual(names(dir.host), ['.temp', 'final']);
  nodeFs.unlinkSync(path.join(dir.host, 'final'));
  fs.renameNoClobber(`${dir.guest}/.temp`, `${dir.guest}/final`);
  assert.deepEqual(names(dir.host), ['final']);
  assert.equal(nodeFs.readFileSync(path.join(dir.host, 'final'), 'utf8'), 'new');
});
