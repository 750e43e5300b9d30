-- What the 2.0.1 release did to the live database: a new table and a
-- half-finished backfill. The rollback restores the last backup from before it.
CREATE TABLE insights(id INTEGER PRIMARY KEY, memory_id INTEGER NOT NULL, summary TEXT);
INSERT INTO insights(memory_id, summary) SELECT id, 'insight ' || id FROM memories WHERE id % 7 = 0;
INSERT INTO agents(name, created) VALUES ('insight-generator', '2026-11-22');
