#!/usr/bin/env python3
"""Makes the files the rollback benchmark acts on, in DIR:

  app/.env          a service's settings, a feature flag on
  data/app.db       the live database (the bad release's), SIZE MiB
  backups/app.db    the backup to restore, SIZE MiB, a different content
  www/health        what the local health endpoint answers

Usage: make_data.py DIR SIZE_MIB. Real SQLite files (Python's sqlite3): rows
of an indexed name and an incompressible 1 KiB blob (the shape of
host/benches/sqlite_restore.rs), so `PRAGMA integrity_check` has real
b-trees to walk.
"""

import os
import sqlite3
import sys


def database(path, size_mib, seed):
    if os.path.exists(path):
        os.remove(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("CREATE TABLE agents (id INTEGER PRIMARY KEY, name TEXT NOT NULL, notes BLOB NOT NULL)")
    conn.execute("CREATE INDEX agents_name ON agents (name)")
    row = 1024
    rows = max(1, size_mib * 1024 * 1024 // (row + 200))
    batch = []
    for i in range(rows):
        batch.append((i, f"agent-{seed}-{i:09d}", os.urandom(row)))
        if len(batch) == 1000:
            conn.executemany("INSERT INTO agents VALUES (?, ?, ?)", batch)
            batch.clear()
    conn.executemany("INSERT INTO agents VALUES (?, ?, ?)", batch)
    conn.commit()
    conn.close()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    root, size = sys.argv[1], int(sys.argv[2])
    for sub in ("app", "data", "backups", "www"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    with open(os.path.join(root, "app", ".env"), "w") as f:
        f.write("NODE_ENV=production\nINSIGHT_GENERATION_ENABLED=true\nLOG_LEVEL=info\n")
    with open(os.path.join(root, "www", "health"), "w") as f:
        f.write('{"status": "healthy"}\n')
    database(os.path.join(root, "backups", "app.db"), size, "backup")
    database(os.path.join(root, "data", "app.db"), size, "live")


if __name__ == "__main__":
    main()
