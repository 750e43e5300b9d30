#!/usr/bin/env bash
# The demo: builds backout and the env-toggle and sqlite-restore plugins from
# source, fills a registry in a temp directory, runs a real env-toggle
# runbook on a real .env file (CRLF line endings, comments, quotes, no final
# newline), showing the plan, the run, and exactly which bytes changed; then
# a real database rollback: the newest matching SQLite backup, checked,
# swapped in atomically with a safety copy of the current database; and a
# smoke test against an HTTP API the demo starts on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/setup.sh --rust-only
# The demo makes its databases with the sqlite3 shell.
if ! command -v sqlite3 >/dev/null; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q sqlite3
fi

echo "==> building the env-toggle, sqlite-restore and smoke-test plugins (wasm32-wasip2 components) and backout"
cargo build --locked --release --target wasm32-wasip2 -p env-toggle -p sqlite-restore -p smoke-test
cargo build --locked -p backout
backout="$PWD/target/debug/backout"
plugin="$PWD/target/wasm32-wasip2/release/env_toggle.wasm"

work=$(mktemp -d "${TMPDIR:-/tmp}/backout-demo.XXXXXX")
export BACKOUT_REGISTRY="$work/registry" BACKOUT_STATE_DIR="$work/state"
mkdir -p "$work/app"
cp tests/demo/app.env "$work/app/.env"
chmod 600 "$work/app/.env"

echo; echo "==> backout registry add $plugin"
"$backout" registry add "$plugin"

echo; echo "==> backout plan tests/demo/feature-rollback.toml --var app_dir=$work/app"
"$backout" plan tests/demo/feature-rollback.toml --var "app_dir=$work/app"

echo; echo "==> backout run --yes tests/demo/feature-rollback.toml --var app_dir=$work/app"
"$backout" run --yes tests/demo/feature-rollback.toml --var "app_dir=$work/app"

echo; echo "==> what changed in $work/app/.env (every other byte is kept)"
diff --text tests/demo/app.env "$work/app/.env" | sed "s/\r$/\\\\r/" || true
echo; echo "==> files in $work/app"
ls -la "$work/app"
echo; 
echo; echo "==> a database rollback: the live database has the 2.0.1 changes; the backups predate them"
db_plugin="$PWD/target/wasm32-wasip2/release/sqlite_restore.wasm"
mkdir -p "$work/data" "$work/backups"
sqlite3 "$work/backups/cortex-backup-2026-11-21.db" < tests/demo/cortex.sql
sqlite3 "$work/backups/cortex-backup-2026-11-22.db" < tests/demo/cortex.sql
sqlite3 "$work/backups/cortex-backup-2026-11-22.db" "INSERT INTO agents(name, created) VALUES ('reviewer', '2026-11-21')"
touch -d "2026-11-21 03:00:00Z" "$work/backups/cortex-backup-2026-11-21.db"
touch -d "2026-11-22 03:00:00Z" "$work/backups/cortex-backup-2026-11-22.db"
cp "$work/backups/cortex-backup-2026-11-22.db" "$work/data/cortex.db"
sqlite3 "$work/data/cortex.db" < tests/demo/release-2.0.1.sql
chmod 640 "$work/data/cortex.db"
counts="SELECT (SELECT count(*) FROM agents) || ' agents, ' || (SELECT count(*) FROM sqlite_master WHERE name = 'insights') || ' insights table(s)'"
echo "live database: $(sqlite3 "$work/data/cortex.db" "$counts")"
ls -la "$work/backups"

echo; echo "==> backout registry add $db_plugin"
"$backout" registry add "$db_plugin"
db_vars=(--var "data_dir=$work/data" --var "backup_dir=$work/backups")

echo; echo "==> backout plan tests/demo/database-rollback.toml ${db_vars[*]}"
"$backout" plan tests/demo/database-rollback.toml "${db_vars[@]}"

echo; echo "==> backout run --yes tests/demo/database-rollback.toml ${db_vars[*]}"
"$backout" run --yes tests/demo/database-rollback.toml "${db_vars[@]}"

echo; echo "==> the live database now, and the safety copy of the one it replaced"
echo "live database: $(sqlite3 "$work/data/cortex.db" "$counts")"
for copy in "$work"/data/cortex.db.backout-*.bak; do
  echo "safety copy:   $(sqlite3 "file:$copy?immutable=1" "$counts")  ($copy)"
done
ls -la "$work/data"

echo; echo "==> is it healthy again? tests/demo/service.py stands in for the API the rollback brought back"
smoke_plugin="$PWD/target/wasm32-wasip2/release/smoke_test.wasm"
"$backout" registry add "$smoke_plugin"
coproc SERVICE { exec python3 tests/demo/service.py; }
trap 'kill "$SERVICE_PID" 2>/dev/null || true' EXIT
read -r port <&"${SERVICE[0]}"
api="http://127.0.0.1:$port"
export API_KEY="demo-key-$RANDOM$RANDOM"

echo; echo "==> backout plan tests/demo/smoke.toml --var api=$api   (sends nothing)"
"$backout" plan tests/demo/smoke.toml --var "api=$api"

echo; echo "==> backout run --yes tests/demo/smoke.toml --var api=$api"
"$backout" run --yes tests/demo/smoke.toml --var "api=$api"

echo; echo "==> the API key was sent in headers but never written down:"
if grep -rq "$API_KEY" "$work/state"; then echo "LEAKED into the journal"; exit 1; else echo "not in the journal ($work/state/runs)"; fi

echo; echo "The registry, journal, app, data and backup directories are in $work"
