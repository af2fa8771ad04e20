-- Connectivity: more connection types than `wireguard_ext` (the `socks5` and `http` proxies,
-- and those to come). The type is checked by picd's validation, so the table no longer
-- carries a CHECK that a new type would have to rebuild it for. SQLite cannot drop a CHECK in
-- place: the table is rebuilt, and with it the two tables that refer to it (inside the
-- migration's transaction, with foreign keys on). The old table is renamed first, so the
-- children follow it; they are then rebuilt against the new table, and the old one, with no
-- children left, is dropped. Rows, ids and slots are copied unchanged.
ALTER TABLE connectivity_connections RENAME TO connectivity_connections_0017;

CREATE TABLE connectivity_connections (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    type       TEXT NOT NULL,
    -- 1..254: the exit's mark (slot << 24), routing table (1000 + slot) and rule preference
    -- (10100 + slot). Never reused while the row lives, so a mark always means one exit.
    slot       INTEGER NOT NULL UNIQUE CHECK (slot BETWEEN 1 AND 254),
    -- What may be shown, as JSON, in the type's own shape; secrets live in the vault under
    -- `connectivity.<id>.*`.
    settings   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO connectivity_connections (id, name, type, slot, settings, created_at, updated_at)
    SELECT id, name, type, slot, settings, created_at, updated_at FROM connectivity_connections_0017;

CREATE TABLE connectivity_peer_exits_0019 (
    peer_name     TEXT PRIMARY KEY REFERENCES peers(name) ON DELETE CASCADE ON UPDATE CASCADE,
    connection_id TEXT REFERENCES connectivity_connections(id) ON DELETE RESTRICT,
    fail_open     INTEGER NOT NULL DEFAULT 0 CHECK (fail_open IN (0, 1)),
    updated_at    TEXT NOT NULL
);
INSERT INTO connectivity_peer_exits_0019 (peer_name, connection_id, fail_open, updated_at)
    SELECT peer_name, connection_id, fail_open, updated_at FROM connectivity_peer_exits;
DROP TABLE connectivity_peer_exits;
ALTER TABLE connectivity_peer_exits_0019 RENAME TO connectivity_peer_exits;

CREATE TABLE connectivity_health_0019 (
    connection_id TEXT PRIMARY KEY REFERENCES connectivity_connections(id) ON DELETE CASCADE,
    state         TEXT NOT NULL CHECK (state IN ('connecting', 'up', 'down')),
    changed_at    TEXT NOT NULL
);
INSERT INTO connectivity_health_0019 (connection_id, state, changed_at)
    SELECT connection_id, state, changed_at FROM connectivity_health;
DROP TABLE connectivity_health;
ALTER TABLE connectivity_health_0019 RENAME TO connectivity_health;

DROP TABLE connectivity_connections_0017;
