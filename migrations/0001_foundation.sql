-- Users of the cell: the owner (admin) and the people invited (peer).
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'peer')),
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL
);

-- Browser sessions. The cookie value is never stored: rows are keyed by its SHA-256, so a copy
-- of the database does not let anyone take over a session.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    data TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expiry ON sessions(expires_at);

-- The setup wizard: where it stands and what has been entered so far (never a plain password).
CREATE TABLE setup_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    current_step TEXT NOT NULL,
    draft TEXT NOT NULL,
    completed_at TEXT
);
INSERT INTO setup_state (id, current_step, draft) VALUES (1, 'admin', '{}');

-- The cell's identity and network settings, written by the wizard, edited by PUT /api/config.
CREATE TABLE cell_config (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    domain TEXT NOT NULL,
    public_endpoint TEXT NOT NULL,
    wireguard_port INTEGER NOT NULL,
    subnet_v4 TEXT NOT NULL,
    subnet_v6 TEXT NOT NULL,
    dns_upstreams TEXT NOT NULL,
    split_horizon INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);

-- The hash-chained audit log. seq is the chain order; hash covers every other column and
-- prev_hash, so an edit, a deletion or a reordering breaks the chain.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    result TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_time ON audit_log(time);
CREATE INDEX audit_actor ON audit_log(actor);
CREATE INDEX audit_action ON audit_log(action);
CREATE INDEX audit_target ON audit_log(target_type, target_id);

-- The chain's head, written in the same transaction as each entry: deleting the newest
-- entries is caught because the head then points past the end of the log.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Periodic snapshots of /api/status, for GET /api/health/history.
CREATE TABLE health_history (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    overall TEXT NOT NULL,
    subsystems TEXT NOT NULL
);
