#!/usr/bin/env bash
# Validates the Kubernetes examples (integrations/kubernetes/) against the
# Kubernetes JSON schemas, strictly (an unknown field is an error), with
# kubernetes-validate from PyPI (it ships the schemas; no cluster, no
# download). Also: the ConfigMap the Job needs, made from the real runbook
# the way `kubectl create configmap --from-file` makes it, passes; and two
# broken copies of the Job (a misspelt field, a wrong type) are refused, so
# a pass means the validation looked.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
venv_bin=$(bash integrations/ansible/setup.sh | tail -1)
version=1.33.0
validate=("$venv_bin/kubernetes-validate" --strict --kubernetes-version "$version")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"${validate[@]}" integrations/kubernetes/rollback-job.yaml integrations/kubernetes/rollback-daemonset.yaml

"$venv_bin/python" - integrations/ansible/examples/fleet-rollback.toml "$tmp/configmap.yaml" <<'PY'
import sys, yaml
runbook = open(sys.argv[1]).read()
trust = 'format = 1\nrequire_signed = true\n\n[[key]]\nname = "publisher"\npublic = "ed25519:' + "ab" * 32 + '"\n'
doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "backout-rollback"},
       "data": {"fleet-rollback.toml": runbook, "trust.toml": trust}}
yaml.safe_dump(doc, open(sys.argv[2], "w"))
PY
"${validate[@]}" "$tmp/configmap.yaml"

sed 's/^  backoffLimit: 0$/  backofLimit: 0/' integrations/kubernetes/rollback-job.yaml > "$tmp/misspelt.yaml"
sed 's/^  backoffLimit: 0$/  backoffLimit: none/' integrations/kubernetes/rollback-job.yaml > "$tmp/wrong-type.yaml"
for broken in misspelt wrong-type; do
  cmp -s "$tmp/$broken.yaml" integrations/kubernetes/rollback-job.yaml && { echo "FAILED: the $broken copy is not broken" >&2; exit 1; }
  if "${validate[@]}" "$tmp/$broken.yaml" > "$tmp/$broken.log" 2>&1; then
    cat "$tmp/$broken.log"
    echo "FAILED: kubernetes-validate accepted the $broken Job" >&2
    exit 1
  fi
  echo "refused as it must be: the $broken Job ($(grep -m1 -o 'ERROR.*' "$tmp/$broken.log" | cut -c1-120))"
done
echo "kubernetes manifests: valid against the Kubernetes $version schemas (strict)"
