#!/usr/bin/env bash
# Lays out one test host's files, the demo's shape (tests/demo.sh): release
# 2.0.1 is live (`current -> releases/2.0.1`, the 2.0.1 database, the new
# flags on in `.env`), with two database backups from before it, and the
# health service's init script and config.
#
#   tests/fleet/host.sh DIR PORT [corrupt-backup]
#
# DIR/app, DIR/data, DIR/backups, DIR/service/{bin/svc,svc.conf,service.py}.
# With `corrupt-backup` the newest backup is damaged in its middle pages, so
# sqlite-restore's integrity check refuses it: that host's rollback fails.
# The service is not started here (it must start inside the host's network
# namespace: tests/fleet/run.sh does that).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=$1 port=$2 mode=${3:-}
app="$dir/app" data="$dir/data" backups="$dir/backups" service="$dir/service"
mkdir -p "$app/releases/2.0.0" "$app/releases/2.0.1" "$data" "$backups" "$service/bin" "$service/run" "$service/log"

echo "2.0.0" > "$app/releases/2.0.0/REVISION"
echo "2.0.1" > "$app/releases/2.0.1/REVISION"
ln -s releases/2.0.1 "$app/current"
cp "$repo/tests/demo/app.env" "$app/.env"
chmod 600 "$app/.env"

sqlite3 "$backups/cortex-backup-2026-11-21.db" < "$repo/tests/demo/cortex.sql"
sqlite3 "$backups/cortex-backup-2026-11-22.db" < "$repo/tests/demo/cortex.sql"
sqlite3 "$backups/cortex-backup-2026-11-22.db" "INSERT INTO agents(name, created) VALUES ('reviewer', '2026-11-21')"
cp "$backups/cortex-backup-2026-11-22.db" "$data/cortex.db"
sqlite3 "$data/cortex.db" < "$repo/tests/demo/release-2.0.1.sql"
chmod 640 "$data/cortex.db"
if [ "$mode" = corrupt-backup ]; then
  # 64 KiB of zeros from the third page on: the header still says SQLite,
  # the b-tree pages under it are gone.
  dd if=/dev/zero of="$backups/cortex-backup-2026-11-22.db" bs=4096 seek=2 count=16 conv=notrunc status=none
fi
touch -d "2026-11-21 03:00:00Z" "$backups/cortex-backup-2026-11-21.db"
touch -d "2026-11-22 03:00:00Z" "$backups/cortex-backup-2026-11-22.db"

cp "$repo/tests/fixtures/svc" "$service/bin/svc"
cp "$repo/tests/fixtures/service.py" "$service/service.py"
chmod 755 "$service/bin/svc"
# The interpreter itself, not a shim: backout starts `svc` with an empty
# environment, and over ssh PATH is not the test's.
python=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
cat > "$service/svc.conf" <<CONF
PORT=$port
APP_DIR='$app'
PYTHON=$python
SERVICE='$service/service.py'
CONF
