#!/usr/bin/env bash
# sqlite-restore's job as a shell script: check the backup, keep the live
# database, swap the backup in atomically (tests/bench/restore.toml).
#   restore.sh DIR
set -euo pipefail
dir=$1
stamp=$(date -u +%Y%m%dT%H%M%SZ)
test "$(sqlite3 "$dir/backups/app.db" 'PRAGMA integrity_check')" = ok
cp -p "$dir/data/app.db" "$dir/data/app.db.$stamp.bak"
cp "$dir/backups/app.db" "$dir/data/.app.db.tmp"
sync "$dir/data/.app.db.tmp"
mv "$dir/data/.app.db.tmp" "$dir/data/app.db"
sync "$dir/data"
