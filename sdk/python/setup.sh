#!/usr/bin/env bash
# Installs the toolchain for backout plugins written in Python: componentize-py,
# pinned, from PyPI. Idempotent and quick when it is already installed; run by
# tests/setup.sh.
#
# Builds call componentize-py through the interpreter (see componentize.sh),
# so nothing here depends on the `componentize-py` script being on PATH; the
# `pyenv rehash` only makes the script visible to people who type it.
set -euo pipefail

version=0.25.1

installed() {
  python3 - "$version" <<'PY' 2>/dev/null
import importlib.metadata, sys
sys.exit(0 if importlib.metadata.version("componentize-py") == sys.argv[1] else 1)
PY
}

if installed; then
  exit 0
fi

if ! command -v python3 >/dev/null; then
  echo "sdk/python/setup.sh: python3 is needed to build Python plugins" >&2
  exit 1
fi

pip=(python3 -m pip install --quiet --disable-pip-version-check "componentize-py==${version}")
# A Debian system Python refuses a plain install (PEP 668); pyenv's and a
# venv's do not. Fall back to the user's site-packages there.
if ! "${pip[@]}" 2>/dev/null; then
  "${pip[@]}" --user --break-system-packages
fi

if command -v pyenv >/dev/null; then
  pyenv rehash
fi

if ! installed; then
  echo "sdk/python/setup.sh: componentize-py ${version} did not install" >&2
  exit 1
fi
