-- Connectivity: named connections (exits) a peer's internet traffic may leave through, and
-- each peer's choice. A connection's secrets (private key, preshared key) live in the vault
-- under `connectivity.<id>.*`; `settings` holds only what may be shown (addresses, DNS, the
-- provider's public key, endpoint, AllowedIPs, keepalive) as JSON.
CREATE TABLE connectivity_connections (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    type       TEXT NOT NULL CHECK (type IN ('wireguard_ext')),
    -- 1..254: the exit's mark (slot << 24), routing table (1000 + slot) and rule preference
    -- (10100 + slot). Never reused while the row lives, so a mark always means one exit.
    slot       INTEGER NOT NULL UNIQUE CHECK (slot BETWEEN 1 AND 254),
    settings   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- A peer without a row goes direct and is fail-closed. A connection cannot be deleted while
-- a peer uses it (RESTRICT; the API answers 409 in_use first). The row goes with its peer.
CREATE TABLE connectivity_peer_exits (
    peer_name     TEXT PRIMARY KEY REFERENCES peers(name) ON DELETE CASCADE ON UPDATE CASCADE,
    connection_id TEXT REFERENCES connectivity_connections(id) ON DELETE RESTRICT,
    fail_open     INTEGER NOT NULL DEFAULT 0 CHECK (fail_open IN (0, 1)),
    updated_at    TEXT NOT NULL
);

-- What the health checks last decided for each connection (`connecting`, `up`, `down`): runtime
-- state, written only when it changes, read by the renderer (fail-open peers of a down exit
-- go direct) and by /api/connectivity/status.
CREATE TABLE connectivity_health (
    connection_id TEXT PRIMARY KEY REFERENCES connectivity_connections(id) ON DELETE CASCADE,
    state         TEXT NOT NULL CHECK (state IN ('connecting', 'up', 'down')),
    changed_at    TEXT NOT NULL
);
