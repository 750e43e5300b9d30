// Module resolution hooks for the unit tests (see register.js).
const STUB = new URL('./host-stub.js', import.meta.url).href;
const SDK = new URL('../backout-sdk.js', import.meta.url).href;
const SDK_DIR = new URL('../', import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier.startsWith('backout:') || specifier.startsWith('wasi:')) {
    return { url: STUB, shortCircuit: true };
  }
  // A plugin imports the SDK as `./backout-sdk.js`, the copy its build puts
  // beside it (as in a `backout new --lang js` project); in this repository
  // that is sdk/js/backout-sdk.js.
  if (specifier === './backout-sdk.js' && context.parentURL && !context.parentURL.startsWith(SDK_DIR)) {
    return { url: SDK, shortCircuit: true };
  }
  return next(specifier, context);
}
