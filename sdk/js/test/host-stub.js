// Stand-ins for the component's imports in Node unit tests. What the host
// would see is recorded in `stub`; tests set `stub.preopens` and
// `stub.copyPermissions` as they need.
export const stub = {
  logs: [],
  progress: [],
  preopens: [],
  copyPermissions: () => {},
  now: () => ({ seconds: 1795432721n, nanoseconds: 0 }),
};

// backout:step/host@0.1.0
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

// wasi:filesystem/preopens@0.2.12
export function getDirectories() {
  return stub.preopens;
}

// wasi:clocks/wall-clock@0.2.12
export function now() {
  return stub.now();
}
