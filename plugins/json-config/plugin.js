// json-config: a backout step that sets or removes values in a JSON file by
// JSON Pointer (RFC 6901), and can put the file back exactly as it was.
//
// Rolling back a release often means flipping a flag in a JSON config file
// (`/features/insight_generation/enabled` → `false`). Done with `jq` or an
// editor, the edit reformats the whole file, loses key order or the final
// newline, turns a 0600 file into 0644, and cannot be undone. This step makes
// the edit reviewable (`plan` says pointer by pointer what will change),
// minimal (only the targeted values' bytes change; see jsonedit.js), safe (a
// safety copy first, then an atomic replace keeping the file's mode and owner,
// then a read-back check) and reversible (`undo` restores the copy's bytes,
// but only if the file still holds exactly what `run` wrote). It survives
// backout being killed: the outputs are checkpointed between the safety copy
// and the replace, so after a crash `verify` tells whether the edit was
// written and `undo` puts back what it finds, or has nothing to undo.
//
// Built by build.sh with componentize-js; `./backout-sdk.js` is the SDK
// (sdk/js/backout-sdk.js), copied beside this file at build time.

import {
  FsError,
  bytesEqual,
  checkpoint,
  defineStep,
  failed,
  fs,
  invalidConfig,
  log,
  precondition,
  sha256Hex,
  transient,
  utf8Decode,
  utf8Encode,
} from './backout-sdk.js';
import { SCHEMA, validate } from './config.js';
import { jsonEqual, lookup, parse, planEdit } from './jsonedit.js';
import { actionDetail, actionSummary, logLine, masks, record, runSummary, show, MASK } from './report.js';

const NAME = 'json-config';
const VERSION = '0.1.0';

/** Larger files are refused: a config file is small, and the whole file is held in memory to edit it. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------
// The step
// ---------------------------------------------------------------------------

/** Reads the file and says what `run` would do, one action per pointer. */
function plan(config) {
  const valid = validate(config);
  const { text } = readJsonFile(valid.file);
  const { changes } = planEdit(text, valid, valid.file);
  // A pointer already as requested is in place: a re-run changes nothing.
  return changes.map((c) => ({
    summary: actionSummary(c, valid.file),
    detail: actionDetail(c),
    effect: c.action === 'unchanged' ? 'in-place' : 'change',
  }));
}

/**
 * Re-reads the file (never trusting plan), computes the edit, keeps a safety
 * copy, writes atomically and reads the result back.
 */
async function run(config) {
  const valid = validate(config);
  const file = valid.file;
  const { bytes: before, text } = readJsonFile(file);
  const edit = planEdit(text, valid, file);
  const sha256Before = await sha256Hex(before);
  const changes = edit.changes.map(record);
  if (edit.output === null) {
    const summary = runSummary(edit.changes, file, null);
    log.info(summary);
    const outputs = { file, safety_copy: null, changes, sha256_before: sha256Before, sha256_after: sha256Before };
    return { summary, outputs };
  }
  const after = utf8Encode(edit.output);
  const copy = await takeSafetyCopy(file, sha256Before);
  const outputs = {
    file,
    safety_copy: copy,
    changes,
    sha256_before: sha256Before,
    sha256_after: await sha256Hex(after),
  };
  // The write-ahead record: if backout dies from here on, `verify` and `undo`
  // get these outputs whether the replace happened or not.
  try {
    checkpoint(outputs);
  } catch (e) {
    try {
      fs.removeFile(copy);
    } catch {
      // The copy is complete; leaving it behind changes nothing that matters.
    }
    throw e;
  }
  writeAndConfirm(valid, before, after, copy);
  for (const change of edit.changes) log.info(logLine(change, file));
  return { summary: runSummary(edit.changes, file, copy), outputs };
}

/**
 * Checks that every value set reads as requested and every value removed is
 * gone, where `run` left them. No effects.
 *
 * After a crash `outputs` is run's checkpoint, taken before the replace, so
 * the edit may never have been written: a file that still holds exactly its
 * bytes from before the run fails even where every pointer happens to read
 * as requested.
 */
async function verify(config, outputs) {
  const valid = validate(config);
  sameFile(valid, outputs);
  const { bytes, text } = readJsonFile(valid.file);
  let root;
  try {
    root = parse(text);
  } catch (e) {
    throw precondition(`\`${valid.file}\` is ${e.message}`);
  }
  const problems = mismatches(valid, outputs, text, root);
  const elements = (outputs.changes ?? []).filter((c) => c.action === 'removed' && c.array_element);
  if (elements.length > 0) {
    const found = await sha256Hex(bytes);
    if (found !== outputs.sha256_after) {
      problems.push(
        `the removal of ${elements.map((c) => `\`${c.pointer}\``).join(', ')} can be confirmed only while ` +
          `\`${valid.file}\` holds what the run wrote (sha256 \`${outputs.sha256_after}\`), and it now has sha256 \`${found}\``,
      );
    }
  }
  if (problems.length === 0 && outputs.sha256_before !== outputs.sha256_after) {
    const found = await sha256Hex(bytes);
    if (found === outputs.sha256_before) {
      problems.push(
        `\`${valid.file}\` still holds its content from before the run (sha256 \`${found}\`): the edit was never written`,
      );
    }
  }
  if (problems.length > 0) throw precondition(problems.join('; '));
}

/**
 * Puts the safety copy's bytes back, only if the file still holds exactly
 * what `run` wrote and the copy still holds exactly what `run` replaced. The
 * safety copy stays in place as evidence.
 *
 * Idempotent: a file that already holds its bytes from before the run (the
 * run was killed before its replace, or an earlier undo finished) is left
 * alone, and undo succeeds with "nothing to undo".
 */
async function undo(config, outputs) {
  const valid = validate(config);
  sameFile(valid, outputs);
  const file = outputs.file;
  const copy = outputs.safety_copy;
  if (copy === null || copy === undefined) {
    const summary = `nothing to undo: the run changed nothing in ${file}`;
    log.info(summary);
    return { summary, outputs };
  }
  let current;
  try {
    current = readJsonFile(file, { parseAsJson: false }).bytes;
  } catch (e) {
    if (e.kind === 'precondition') throw precondition(`${e.message}; nothing was restored`);
    throw e;
  }
  const found = await sha256Hex(current);
  if (found === outputs.sha256_before) {
    const summary = `nothing to undo: ${file} already holds its content from before the run`;
    log.info(summary);
    return { summary, outputs };
  }
  if (found !== outputs.sha256_after) {
    throw precondition(
      `\`${file}\` changed since the run (expected sha256 \`${outputs.sha256_after}\`, found \`${found}\`); ` +
        `nothing was restored; its content from before the run is in the safety copy \`${copy}\``,
    );
  }
  const original = await readSafetyCopy(copy, outputs.sha256_before);
  await restore(file, copy, original, outputs.sha256_before);
  const summary = `restored ${file} from safety copy ${copy}`;
  log.info(summary);
  return { summary, outputs: { ...outputs, restored_from: copy } };
}

export const step = defineStep({
  name: NAME,
  version: VERSION,
  summary: 'set or remove values in a JSON file by JSON Pointer, keeping every other byte, with a safety copy for undo',
  schema: SCHEMA,
  needs: { files: 'read-write', env: [], network: false },
  plan,
  run,
  verify,
  undo,
});

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/**
 * Reads the file to edit, refusing what an atomic replace would break (a
 * symbolic link would become a plain file; anything but a regular file), files
 * over MAX_FILE_BYTES and text that is not UTF-8. Returns `{ bytes, text }`.
 */
function readJsonFile(file, { parseAsJson = true } = {}) {
  let meta;
  try {
    meta = fs.stat(file);
  } catch (e) {
    throw unreadable(file, e);
  }
  if (meta === null) throw unreadable(file, new FsError('no-entry', file));
  if (meta.type === 'symbolic-link') {
    let target = '';
    try {
      target = ` to \`${fs.readLink(file)}\``;
    } catch {
      // The link's target only makes the message better.
    }
    throw precondition(
      `\`${file}\` is a symbolic link${target}; replacing it would replace the link with a plain file, ` +
        'so set `file` to the file it points to',
    );
  }
  if (meta.type !== 'regular-file') throw precondition(`\`${file}\` is not a regular file (it is a ${meta.type})`);
  let bytes;
  try {
    bytes = fs.readFile(file, { maxBytes: MAX_FILE_BYTES });
  } catch (e) {
    if (e instanceof FsError && e.code === 'too-large') {
      throw precondition(`\`${file}\` is larger than ${MAX_FILE_BYTES / (1024 * 1024)} MiB, too large for a config file`);
    }
    throw unreadable(file, e);
  }
  if (!parseAsJson) return { bytes, text: null };
  let text;
  try {
    text = utf8Decode(bytes);
  } catch {
    throw precondition(`\`${file}\` is not valid UTF-8, so it is not a JSON file (RFC 8259 requires UTF-8)`);
  }
  return { bytes, text };
}

function unreadable(file, e) {
  if (e instanceof FsError) {
    if (e.code === 'no-entry') {
      return precondition(
        `\`${file}\` does not exist, or is not inside a directory granted to this step: the file must be ` +
          `inside a granted directory (${e.message})`,
      );
    }
    if (e.code === 'not-granted') return precondition(`\`${file}\` is not inside a directory granted to this step`);
    if (e.code === 'invalid-path') return invalidConfig(`\`file\` must be an absolute guest path without \`..\`, not \`${file}\``, '/file');
    return precondition(`cannot read \`${file}\`: ${e.message}; the file must be inside a directory granted to this step`);
  }
  return e;
}

/** `verify` and `undo` must act on the file `run` edited. */
function sameFile(valid, outputs) {
  if (outputs.file === valid.file) return;
  throw invalidConfig(
    `the run's outputs are for \`${outputs.file}\` but the config names \`${valid.file}\`; use the config the run used`,
    '/file',
  );
}

// ---------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------

/** What does not read as requested in a parsed document, one message each. */
function mismatches(valid, outputs, text, root) {
  const wanted = new Map(valid.set);
  const problems = [];
  const recorded = outputs.changes ?? [];
  const byPointer = new Map(recorded.map((c) => [c.pointer, c]));
  for (const [pointer, value] of valid.set) {
    const change = byPointer.get(pointer);
    const at = change?.at ?? pointer;
    if (pointer.endsWith('/-') && change?.at === undefined) {
      problems.push(`the outputs do not say where \`${pointer}\` was appended; use the outputs of the run`);
      continue;
    }
    const found = lookup(text, root, at);
    const masked = masks({ pointer, old: found.value, new: value });
    const where = at === pointer ? `\`${pointer}\`` : `\`${pointer}\` (now \`${at}\`)`;
    if (!found.found) {
      problems.push(`${where} is not in \`${valid.file}\`${found.ambiguous ? ' (a key on the way appears more than once)' : ''}; expected ${masked ? MASK : show(value)}`);
    } else if (!jsonEqual(found.value, wanted.get(pointer))) {
      problems.push(
        masked
          ? `${where} in \`${valid.file}\` (line ${found.line}) does not hold the requested value (values hidden)`
          : `${where} in \`${valid.file}\` (line ${found.line}) holds ${show(found.value)}; expected ${show(value)}`,
      );
    }
  }
  for (const pointer of valid.remove) {
    const change = byPointer.get(pointer);
    if (change?.action === 'removed' && change.array_element) continue; // checked by digest
    const at = change?.at ?? pointer;
    const found = lookup(text, root, at);
    if (found.found) {
      problems.push(`\`${pointer}\` is still in \`${valid.file}\` (line ${found.line}); expected it to be absent`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/**
 * Takes the safety copy and checks it holds the bytes the edit was computed
 * from: if the file changed in between, nothing is written.
 */
async function takeSafetyCopy(file, sha256Before) {
  let copy;
  try {
    copy = fs.safetyCopy(file);
  } catch (e) {
    throw failed(`could not take a safety copy of \`${file}\`: ${e.message}; nothing was changed`);
  }
  let bytes;
  try {
    bytes = fs.readFile(copy);
  } catch (e) {
    throw failed(`could not read back the safety copy \`${copy}\`: ${e.message}; nothing was written to \`${file}\``);
  }
  const digest = await sha256Hex(bytes);
  if (digest !== sha256Before) {
    throw transient(
      `\`${file}\` changed while json-config was working (sha256 \`${sha256Before}\` when read, \`${digest}\` when ` +
        `copied); nothing was written to it and the safety copy \`${copy}\` was kept; try again`,
    );
  }
  return copy;
}

/**
 * Writes the new bytes atomically, then reads the file back and checks every
 * pointer; if that fails, puts the original bytes back.
 */
function writeAndConfirm(valid, before, after, copy) {
  const file = valid.file;
  try {
    fs.replaceAtomically(file, after);
  } catch (e) {
    throw failed(`could not write \`${file}\`: ${e.message}; ${describeState(file, before, after)}; the safety copy is \`${copy}\``);
  }
  let problem = null;
  try {
    const back = fs.readFile(file);
    if (!bytesEqual(back, after)) problem = 'it does not hold the bytes written';
  } catch (e) {
    problem = `it could not be read back (${e.message})`;
  }
  if (problem === null) return;
  try {
    fs.replaceAtomically(file, before);
  } catch (e) {
    throw failed(
      `after writing \`${file}\`, ${problem}; restoring its original content failed too (${e.message}); ` +
        `the original is in the safety copy \`${copy}\``,
    );
  }
  throw failed(`after writing \`${file}\`, ${problem}; restored its original content (also in the safety copy \`${copy}\`)`);
}

/** What a failed write left behind, found by reading the file again. */
function describeState(file, before, after) {
  try {
    const bytes = fs.readFile(file);
    if (bytesEqual(bytes, before)) return 'the file is unchanged';
    if (bytesEqual(bytes, after)) return 'the new content is in place, but may not be durable';
  } catch {
    // Falls through to "could not be confirmed".
  }
  return "the file's content could not be confirmed";
}

/** Reads the safety copy and checks it still holds what `run` replaced. */
async function readSafetyCopy(copy, sha256Before) {
  let bytes;
  try {
    bytes = fs.readFile(copy, { maxBytes: MAX_FILE_BYTES });
  } catch (e) {
    throw precondition(`cannot read the safety copy \`${copy}\`: ${e.message}; nothing was restored`);
  }
  const digest = await sha256Hex(bytes);
  if (digest !== sha256Before) {
    throw precondition(
      `the safety copy \`${copy}\` does not hold what the run replaced (expected sha256 \`${sha256Before}\`, ` +
        `found \`${digest}\`); nothing was restored`,
    );
  }
  return bytes;
}

/** Writes the original bytes back atomically and confirms them. */
async function restore(file, copy, original, sha256Before) {
  try {
    fs.replaceAtomically(file, original);
  } catch (e) {
    let state = "the file's content could not be confirmed";
    try {
      state = bytesEqual(fs.readFile(file), original)
        ? 'the original content is in place, but may not be durable'
        : 'the file still holds what the run wrote';
    } catch {
      // Keeps "could not be confirmed".
    }
    throw failed(`could not restore \`${file}\` from the safety copy \`${copy}\`: ${e.message}; ${state}`);
  }
  let found;
  try {
    found = await sha256Hex(fs.readFile(file));
  } catch (e) {
    found = `unreadable: ${e.message}`;
  }
  if (found !== sha256Before) {
    throw failed(
      `restored \`${file}\` from the safety copy \`${copy}\`, but reading it back gives sha256 \`${found}\` ` +
        `instead of \`${sha256Before}\`; the safety copy is intact`,
    );
  }
}
