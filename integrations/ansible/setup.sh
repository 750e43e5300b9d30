#!/usr/bin/env bash
# Installs what the fleet test (tests/fleet/run.sh) and the collection's
# checks need, idempotent and quick when everything is there; run by
# tests/setup.sh.
#
# - From Debian: openssh-server (each test host runs its own sshd), iproute2
#   (`ip netns`, veth pairs), sqlite3 and python3 (the hosts' databases and
#   health service, as in the demo), shellcheck (ansible-test's shellcheck
#   sanity test).
# - From PyPI, into one virtualenv at a stable path ($BACKOUT_ANSIBLE_VENV,
#   default ~/.local/share/backout-dev/ansible-venv): ansible-core (the
#   controller: ansible-playbook, ansible-galaxy, ansible-test) and
#   kubernetes-validate (the Kubernetes JSON schemas, for the manifests in
#   integrations/kubernetes/). A venv because Debian's own Python refuses
#   `pip install` outside one (PEP 668), and so the pins below are the only
#   versions the test ever sees. ansible-core 2.19 is the newest line whose
#   controller runs on Python 3.11 (Debian 12's).
#
# Prints the venv's bin directory on its last line (tests/fleet/run.sh reads it).
set -euo pipefail

ansible_core=2.19.14
kubernetes_validate=1.37.0
venv=${BACKOUT_ANSIBLE_VENV:-${XDG_DATA_HOME:-$HOME/.local/share}/backout-dev/ansible-venv}

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
scratch=()
cleanup() { if [ "${#scratch[@]}" -gt 0 ]; then $sudo rm -rf "${scratch[@]}"; fi; }
trap cleanup EXIT

missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ip >/dev/null || missing+=(iproute2)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v python3 >/dev/null || missing+=(python3)
command -v shellcheck >/dev/null || missing+=(shellcheck)
if [ "${#missing[@]}" -gt 0 ]; then
  # policy-rc.d answers 101 ("not allowed") so that installing
  # openssh-server does not start a system-wide sshd on port 22: the test
  # starts its own, one per network namespace, and nothing else.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    scratch+=("$policy")
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

installed() {
  [ -x "$venv/bin/python" ] && "$venv/bin/python" - "$ansible_core" "$kubernetes_validate" <<'PY' 2>/dev/null
import importlib.metadata as m, sys
ok = m.version("ansible-core") == sys.argv[1] and m.version("kubernetes-validate") == sys.argv[2]
sys.exit(0 if ok else 1)
PY
}

if ! installed; then
  # Debian's system Python needs python3-venv for `-m venv` (pyenv's has it).
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
  fi
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "ansible-core==${ansible_core}" "kubernetes-validate==${kubernetes_validate}"
  if ! installed; then
    echo "integrations/ansible/setup.sh: ansible-core ${ansible_core} or kubernetes-validate ${kubernetes_validate} did not install in ${venv}" >&2
    exit 1
  fi
fi

# ansible-test runs each sanity test in a virtualenv of its own
# (~/.ansible/test/venv), which it makes without pip and then bootstraps
# with a get-pip.py it downloads from a host this machine cannot reach. The
# stand-in (get_pip.py here) does the same from PyPI; --prime-venvs makes
# every sanity venv now, so that tests/fleet/sanity.sh installs nothing.
# Quick once they exist (each is kept under a hash of its requirements).
pip_version=$("$venv/bin/python" -c 'import re, ansible_test._internal.python_requirements as r, inspect
print(re.search(r"pip=.([0-9.]+).", inspect.getsource(r)).group(1))')
get_pip="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [ ! -e "$get_pip" ]; then
  mkdir -p "$(dirname "$get_pip")"
  cp "$(dirname "$0")/get_pip.py" "$get_pip"
fi
tree=$(mktemp -d)
scratch+=("$tree")
mkdir -p "$tree/ansible_collections/backout"
cp -r "$(dirname "$0")" "$tree/ansible_collections/backout/rollback"
(cd "$tree/ansible_collections/backout/rollback" && "$venv/bin/ansible-test" sanity --python 3.11 --prime-venvs --color no >/dev/null 2>"$tree/prime.log") || {
  cat "$tree/prime.log" >&2
  echo "integrations/ansible/setup.sh: ansible-test could not make its sanity virtualenvs" >&2
  exit 1
}
echo "$venv/bin"
