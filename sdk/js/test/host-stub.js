// Stand-ins for the component's imports in Node unit tests. What the host
// would see is recorded in `stub`; tests set `stub.preopens`,
// `stub.copyPermissions`, `stub.checkpoint` and `stub.temporaryFile` as they need.
export const stub = {
  logs: [],
  progress: [],
  preopens: [],
  checkpoints: [],
  temporaryFiles: [],
  copyPermissions: () => {},
  // Set to a function that throws `{ payload: 'reason' }` to refuse, as
  // componentize-js throws a `result` error.
  checkpoint: (json) => stub.checkpoints.push(json),
  temporaryFile: (path) => stub.temporaryFiles.push(path),
  // backout:step/files: tests that copy or hash set these to do it for real.
  copyFile: () => {
    throw { payload: 'no host file operations in this test' };
  },
  sha256File: () => {
    throw { payload: 'no host file operations in this test' };
  },
  now: () => ({ seconds: 1795432721n, nanoseconds: 0 }),
};

// backout:step/host@0.2.0
export function log(level, message) {
  stub.logs.push([level, message]);
}
export function progress(done, total, unit) {
  stub.progress.push([done, total, unit]);
}
export function copyPermissions(source, target) {
  return stub.copyPermissions(source, target);
}
export function checkRequest() {}
export function checkpoint(outputs) {
  return stub.checkpoint(outputs);
}
export function temporaryFile(path) {
  return stub.temporaryFile(path);
}

// backout:step/files@0.2.0
export function copyFile(source, target) {
  return stub.copyFile(source, target);
}
export function sha256File(path) {
  return stub.sha256File(path);
}

// wasi:filesystem/preopens@0.2.12
export function getDirectories() {
  return stub.preopens;
}

// wasi:clocks/wall-clock@0.2.12
export function now() {
  return stub.now();
}
