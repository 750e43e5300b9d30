// {{name}}: a backout step, written in JavaScript.
//
// A complete example to change into your own: it replaces a file's contents,
// keeping a safety copy, and can undo that. `./backout-sdk.js` is the backout
// SDK (config checks, errors, the host's log, sha256, safe file I/O over
// wasi:filesystem).
//
// Rules every step keeps:
// 1. `plan` checks and describes, and changes nothing (the host mounts every
//    directory read-only while it runs);
// 2. `run` keeps a safety copy of what it replaces and writes atomically,
//    keeping the file's mode and owner (fs.safetyCopy, fs.replaceAtomically);
// 3. `verify` checks what `run` did;
// 4. `undo` puts back exactly what `run` replaced, and only if nothing changed
//    since; otherwise it refuses with `precondition`.
//
// Code at the top level of a module runs once, when the component is built:
// call the host, read files or the clock only inside the step's functions.

import { defineStep, fs, log, precondition, sha256Hex, utf8Encode } from './backout-sdk.js';

/** The config's JSON Schema: the SDK refuses unknown keys and wrong types with it. */
const SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: '{{name}}',
  type: 'object',
  properties: {
    file: { description: 'Guest path of the file to replace, in a read-write grant.', type: 'string', pattern: '^/' },
    contents: { description: 'The new contents (UTF-8 text).', type: 'string' },
  },
  required: ['file', 'contents'],
  additionalProperties: false,
};

/** The file's bytes; a missing file or one outside the grants is a precondition. */
function read(file) {
  const meta = fs.stat(file);
  if (meta === null) throw precondition(`\`${file}\` does not exist, or is not inside a directory granted to this step`);
  if (meta.type !== 'regular-file') throw precondition(`\`${file}\` is not a regular file`);
  return fs.readFile(file, { maxBytes: 16 * 1024 * 1024 });
}

function checkFile(config) {
  if (!config.file.startsWith('/')) {
    throw precondition(`\`file\` must be an absolute guest path such as \`/app/app.conf\`, not \`${config.file}\``);
  }
}

export const step = defineStep({
  name: '{{name}}',
  version: '0.1.0',
  summary: "replace a file's contents, with a safety copy for undo",
  schema: SCHEMA,
  needs: { files: 'read-write', env: [], network: false },

  async plan(config) {
    checkFile(config);
    const before = read(config.file);
    const after = utf8Encode(config.contents);
    if ((await sha256Hex(before)) === (await sha256Hex(after))) {
      return [{ summary: `leave ${config.file} as it is`, detail: 'it already has the requested contents' }];
    }
    return [{ summary: `replace ${config.file}`, detail: `${before.length} bytes → ${after.length} bytes` }];
  },

  async run(config) {
    checkFile(config);
    const file = config.file;
    const before = read(file);
    const after = utf8Encode(config.contents);
    const sha256Before = await sha256Hex(before);
    const sha256After = await sha256Hex(after);
    if (sha256Before === sha256After) {
      const outputs = { file, safety_copy: null, sha256_before: sha256Before, sha256_after: sha256After };
      return { summary: `no change needed: ${file} already has the requested contents`, outputs };
    }
    const safetyCopy = fs.safetyCopy(file); // 1. keep what you replace
    fs.replaceAtomically(file, after); // 2. temp file, sync, mode and owner, rename, sync the directory
    if ((await sha256Hex(fs.readFile(file))) !== sha256After) {
      throw precondition(`\`${file}\` does not hold what was written; the original is in \`${safetyCopy}\``);
    }
    log.info(`replaced ${file} (safety copy ${safetyCopy})`);
    const outputs = { file, safety_copy: safetyCopy, sha256_before: sha256Before, sha256_after: sha256After };
    return { summary: `replaced ${file} (safety copy ${safetyCopy})`, outputs };
  },

  async verify(config, outputs) {
    // 3. check after writing
    const found = await sha256Hex(read(config.file));
    if (found !== outputs.sha256_after) {
      throw precondition(`\`${config.file}\` does not hold what run wrote (sha256 ${found})`);
    }
  },

  async undo(config, outputs) {
    // 4. only if untouched since
    const file = config.file;
    if (outputs.safety_copy === null) return { summary: `nothing to undo in ${file}`, outputs };
    const now = await sha256Hex(read(file));
    if (now === outputs.sha256_before) return { summary: `${file} already holds its old contents`, outputs };
    if (now !== outputs.sha256_after) {
      throw precondition(`\`${file}\` changed since run (sha256 ${now}); nothing restored`);
    }
    const original = fs.readFile(outputs.safety_copy);
    if ((await sha256Hex(original)) !== outputs.sha256_before) {
      throw precondition(`the safety copy \`${outputs.safety_copy}\` was altered; nothing restored`);
    }
    fs.replaceAtomically(file, original);
    log.info(`restored ${file} from ${outputs.safety_copy}`);
    return { summary: `restored ${file} from ${outputs.safety_copy}`, outputs };
  },
});
