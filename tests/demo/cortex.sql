-- The demo's database: what the service's schema looked like before the
-- 2.0.1 release. tests/demo.sh builds the backups and the live database from it.
CREATE TABLE agents(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created TEXT NOT NULL);
CREATE TABLE memories(id INTEGER PRIMARY KEY, agent_id INTEGER NOT NULL REFERENCES agents(id), body TEXT NOT NULL);
CREATE INDEX memories_agent ON memories(agent_id);
INSERT INTO agents(name, created) VALUES
  ('planner', '2026-10-01'), ('researcher', '2026-10-02'), ('writer', '2026-10-05');
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
INSERT INTO memories(agent_id, body) SELECT 1 + i % 3, 'memory ' || i || ': ' || hex(randomblob(64)) FROM n;
