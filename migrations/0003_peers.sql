-- The cell's own WireGuard identity; the private key is the vault secret 'wireguard.private_key'.
CREATE TABLE wireguard_server (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    public_key TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Peers: the devices of the people the owner invites. A peer's private key (when picd made
-- it) and preshared key are vault secrets; only public facts are kept here.
CREATE TABLE peers (
    name TEXT PRIMARY KEY,
    public_key TEXT NOT NULL UNIQUE,
    key_source TEXT NOT NULL CHECK (key_source IN ('generated', 'client')),
    has_preshared_key INTEGER NOT NULL,
    address_v4 TEXT NOT NULL UNIQUE,
    address_v6 TEXT NOT NULL UNIQUE,
    tunnel TEXT NOT NULL CHECK (tunnel IN ('full', 'split')),
    allowed_ips TEXT NOT NULL,
    persistent_keepalive INTEGER,
    enabled INTEGER NOT NULL,
    expires_at TEXT,
    user_id TEXT UNIQUE REFERENCES users(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- One-time invitation links that let a peer create their portal login.
CREATE TABLE invitations (
    token_hash TEXT PRIMARY KEY,
    peer_name TEXT NOT NULL REFERENCES peers(name) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
