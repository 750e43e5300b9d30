#!/usr/bin/env bash
# `ansible-test sanity` on the backout.rollback collection
# (integrations/ansible), which ansible-test wants under a path ending in
# ansible_collections/backout/rollback: a copy in a temporary tree.
#
# Runs every sanity test ansible-test 2.19 has for a collection, with the
# controller's Python 3.11, each in the virtualenv
# integrations/ansible/setup.sh made for it (no docker, no download here).
# Tests with nothing to check say so and pass (pslint: no PowerShell;
# action-plugin-docs: no action plugins; changelog: no changelog; ...).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
venv_bin=$(bash "$repo/integrations/ansible/setup.sh" | tail -1)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/ansible_collections/backout"
cp -r "$repo/integrations/ansible" "$tree/ansible_collections/backout/rollback"
cd "$tree/ansible_collections/backout/rollback"
"$venv_bin/ansible-test" sanity --python 3.11 --color no
echo "ansible-test sanity: passed"
