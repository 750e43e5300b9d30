#!/usr/bin/env bash
# The shell script backout replaces, as on-call engineers write it: the same
# three-step rollback as rollback.toml, with the checks such a script has.
#   rollback.sh DIR ORIGIN
# 1. turn the feature flag off in DIR/app/.env (keeping a copy);
# 2. check the backup, keep the live database, swap the backup in atomically;
# 3. smoke-test ORIGIN/health.
set -euo pipefail
dir=$1
origin=$2
stamp=$(date -u +%Y%m%dT%H%M%SZ)

cp -p "$dir/app/.env" "$dir/app/.env.$stamp.bak"
sed -i 's/^INSIGHT_GENERATION_ENABLED=.*/INSIGHT_GENERATION_ENABLED=false/' "$dir/app/.env"

"$(dirname "$0")/restore.sh" "$dir"

curl -fsS "$origin/health" >/dev/null
