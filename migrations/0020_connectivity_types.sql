-- A connection's type is checked by picd (src/connectivity/routes.rs), not by a list in the
-- column: 0017 allowed only 'wireguard_ext', and each new type (openvpn, the proxies, tor)
-- would need the table rebuilt again. SQLite cannot drop a CHECK in place, so the three
-- connectivity tables are rebuilt once, their rows kept. The children are renamed first so
-- the new ones reference the new parent; the old ones go before the old parent.
ALTER TABLE connectivity_health RENAME TO connectivity_health_0017;
ALTER TABLE connectivity_peer_exits RENAME TO connectivity_peer_exits_0017;
ALTER TABLE connectivity_connections RENAME TO connectivity_connections_0017;

CREATE TABLE connectivity_connections (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    type       TEXT NOT NULL CHECK (length(type) BETWEEN 1 AND 32),
    -- 1..254: the exit's mark (slot << 24), routing table (1000 + slot) and rule preference
    -- (10100 + slot). Never reused while the row lives, so a mark always means one exit.
    slot       INTEGER NOT NULL UNIQUE CHECK (slot BETWEEN 1 AND 254),
    settings   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO connectivity_connections (id, name, type, slot, settings, created_at, updated_at)
    SELECT id, name, type, slot, settings, created_at, updated_at FROM connectivity_connections_0017;

CREATE TABLE connectivity_peer_exits (
    peer_name     TEXT PRIMARY KEY REFERENCES peers(name) ON DELETE CASCADE ON UPDATE CASCADE,
    connection_id TEXT REFERENCES connectivity_connections(id) ON DELETE RESTRICT,
    fail_open     INTEGER NOT NULL DEFAULT 0 CHECK (fail_open IN (0, 1)),
    updated_at    TEXT NOT NULL
);
INSERT INTO connectivity_peer_exits (peer_name, connection_id, fail_open, updated_at)
    SELECT peer_name, connection_id, fail_open, updated_at FROM connectivity_peer_exits_0017;

CREATE TABLE connectivity_health (
    connection_id TEXT PRIMARY KEY REFERENCES connectivity_connections(id) ON DELETE CASCADE,
    state         TEXT NOT NULL CHECK (state IN ('connecting', 'up', 'down')),
    changed_at    TEXT NOT NULL
);
INSERT INTO connectivity_health (connection_id, state, changed_at)
    SELECT connection_id, state, changed_at FROM connectivity_health_0017;

DROP TABLE connectivity_health_0017;
DROP TABLE connectivity_peer_exits_0017;
DROP TABLE connectivity_connections_0017;
