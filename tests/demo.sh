#!/usr/bin/env bash
# The demo: a full rollback in one runbook against a real local service.
#
# A service (tests/fixtures/service.py under its init script
# tests/fixtures/svc, standing in for `systemctl … cortex-mcp`) runs release
# 2.0.1: `current -> releases/2.0.1`, the 2.0.1 database (with the new
# `insights` table) and the new flags on in `.env`. tests/demo/full-rollback.toml
# stops it (and waits until its port refuses connections), switches `current`
# back to 2.0.0, restores the newest pre-2.0.1 database backup (checked before
# it replaces anything), turns the flags off, starts it (and waits until it
# is healthy) and checks that the running service reports release 2.0.0 with
# the flags off. Every plugin is built from source; backout verifies each
# one's sha256 against the registry before running it.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/setup.sh --rust-only
# The demo makes its databases with the sqlite3 shell; the service is Python.
missing=()
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v python3 >/dev/null || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

plugins=(service-control release-switch sqlite-restore env-toggle smoke-test)
echo "==> building the plugins (${plugins[*]}: wasm32-wasip2 components) and backout"
# The same target directory as the tests' guest build, so after ./tests/run.sh
# this is nearly free.
guests="$PWD/target/guests"
CARGO_TARGET_DIR="$guests" cargo build --locked --release --target wasm32-wasip2 "${plugins[@]/#/-p}"
cargo build --locked -p backout
backout="${CARGO_TARGET_DIR:-$PWD/target}/debug/backout"

work=$(mktemp -d "${TMPDIR:-/tmp}/backout-demo.XXXXXX")
export BACKOUT_REGISTRY="$work/registry" BACKOUT_STATE_DIR="$work/state"
app="$work/app" data="$work/data" backups="$work/backups" service="$work/service"
mkdir -p "$app/releases/2.0.0" "$app/releases/2.0.1" "$data" "$backups" "$service/bin" "$service/run" "$service/log"

echo; echo "==> release 2.0.1 is live: current -> releases/2.0.1, its database, its flags"
echo "2.0.0" > "$app/releases/2.0.0/REVISION"
echo "2.0.1" > "$app/releases/2.0.1/REVISION"
ln -s releases/2.0.1 "$app/current"
cp tests/demo/app.env "$app/.env"
chmod 600 "$app/.env"
sqlite3 "$backups/cortex-backup-2026-11-21.db" < tests/demo/cortex.sql
sqlite3 "$backups/cortex-backup-2026-11-22.db" < tests/demo/cortex.sql
sqlite3 "$backups/cortex-backup-2026-11-22.db" "INSERT INTO agents(name, created) VALUES ('reviewer', '2026-11-21')"
touch -d "2026-11-21 03:00:00Z" "$backups/cortex-backup-2026-11-21.db"
touch -d "2026-11-22 03:00:00Z" "$backups/cortex-backup-2026-11-22.db"
cp "$backups/cortex-backup-2026-11-22.db" "$data/cortex.db"
sqlite3 "$data/cortex.db" < tests/demo/release-2.0.1.sql
chmod 640 "$data/cortex.db"
counts="SELECT (SELECT count(*) FROM agents) || ' agents, ' || (SELECT count(*) FROM sqlite_master WHERE name = 'insights') || ' insights table(s)'"

# The service and its init script.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cp tests/fixtures/svc "$service/bin/svc"
chmod 755 "$service/bin/svc"
cat > "$service/svc.conf" <<EOF
PORT=$port
APP_DIR='$app'
PYTHON=$(command -v python3)
SERVICE='$PWD/tests/fixtures/service.py'
EOF
trap '"$service/bin/svc" stop >/dev/null 2>&1 || true' EXIT
"$service/bin/svc" start
origin="http://127.0.0.1:$port"
# What /health says, without the rest of .env (it holds an API key).
health() {
  python3 -c 'import json, sys, urllib.request
h = json.load(urllib.request.urlopen(sys.argv[1]))
flags = {k: v for k, v in h["flags"].items() if k.endswith("_ENABLED") or k.endswith("_OPTIONAL")}
print(json.dumps({"status": h["status"], "release": h["release"], "flags": flags}))' "$origin/health"
}
echo "service:       $(health)"
echo "live database: $(sqlite3 "$data/cortex.db" "$counts")"

echo; echo "==> backout registry add (each plugin's sha256 is pinned; runs verify it)"
for plugin in "${plugins[@]}"; do
  "$backout" registry add "$guests/wasm32-wasip2/release/${plugin//-/_}.wasm"
done

vars=(--var "app_dir=$app" --var "data_dir=$data" --var "backup_dir=$backups"
      --var "ctl=$service/bin/svc" --var "unit=cortex-mcp" --var "origin=$origin")

echo; echo "==> backout plan tests/demo/full-rollback.toml   (checks everything; stops nothing, changes nothing)"
"$backout" plan tests/demo/full-rollback.toml "${vars[@]}"

echo; echo "==> backout run --yes tests/demo/full-rollback.toml"
"$backout" run --yes tests/demo/full-rollback.toml "${vars[@]}"

echo; echo "==> afterwards"
echo "service:       $(health)"
echo "current ->     $(readlink "$app/current")"
echo "live database: $(sqlite3 "$data/cortex.db" "$counts")"
for copy in "$data"/cortex.db.backout-*.bak; do
  echo "safety copy:   $(sqlite3 "file:$copy?immutable=1" "$counts")  ($copy)"
done
echo; echo "==> what changed in $app/.env (every other byte is kept)"
diff --text tests/demo/app.env "$app/.env" | sed "s/\r$/\\\\r/" || true

reply=$(health)
case "$reply" in
  *'"release": "2.0.0"'*'"INSIGHT_GENERATION_ENABLED": "false"'*) ;;
  *) echo "the service does not answer release 2.0.0 with the flags off: $reply" >&2; exit 1 ;;
esac

echo; echo "==> backout show last --html $work/report.html   (the run report: timeline, RTO verdict, each step)"
"$backout" show last --html "$work/report.html" >/dev/null
echo; echo "The service answers healthy on release 2.0.0. \`backout undo last\` would put 2.0.1 back."
echo "Registry, journal, app, data, backups and the service's log are in $work"
echo "report: file://$work/report.html"
