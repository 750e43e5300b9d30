// The template's toolchain pin must stay the SDK's: its package.json and
// package-lock.json are the SDK's with the project's name.
// Run: node --import ./sdk/js/test/register.js --test sdk/js/test/*.test.js
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const read = (path) => JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8'));

test('the template pins the same toolchain as sdk/js', () => {
  const sdk = read('../package.json');
  const template = read('../template/package.json');
  assert.equal(template.name, '{{name}}');
  assert.deepEqual(template.devDependencies, sdk.devDependencies);
  assert.deepEqual(template.overrides, sdk.overrides);
  assert.equal(sdk.devDependencies['@bytecodealliance/componentize-js'], '0.23.0');

  const sdkLock = read('../package-lock.json');
  const templateLock = read('../template/package-lock.json');
  const renamed = structuredClone(sdkLock);
  renamed.name = '{{name}}';
  renamed.packages[''].name = '{{name}}';
  assert.deepEqual(templateLock, renamed, 'regenerate sdk/js/template/package-lock.json from sdk/js/package-lock.json');
  assert.equal(sdkLock.packages['node_modules/@bytecodealliance/componentize-js'].version, '0.23.0');
});
