// Lets Node load modules that import the component's WIT interfaces
// (`backout:step/host@0.2.0`, `wasi:…`): those specifiers resolve to
// host-stub.js. Use: node --import ./sdk/js/test/register.js --test …
import { register } from 'node:module';

register('./hooks.js', import.meta.url);
