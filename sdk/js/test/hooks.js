// Module resolution hooks for the unit tests (see register.js).
const STUB = new URL('./host-stub.js', import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier.startsWith('backout:') || specifier.startsWith('wasi:')) {
    return { url: STUB, shortCircuit: true };
  }
  return next(specifier, context);
}
