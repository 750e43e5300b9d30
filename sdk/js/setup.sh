#!/usr/bin/env bash
# Installs the JavaScript toolchain for backout plugins (componentize-js, pinned
# in package-lock.json) into sdk/js/node_modules. Idempotent and quick when the
# installed tree matches the lock; called by tests/setup.sh and by the build.sh
# of every JavaScript plugin in this repository.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "sdk/js/setup.sh: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi

# node_modules is current when it was installed from exactly this lock.
stamp=node_modules/.backout-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x node_modules/.bin/componentize-js ]; then
  exit 0
fi

npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
