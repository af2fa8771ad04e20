-- Secrets, age-encrypted to the vault's identity (the identity file lives beside the
-- database, never in it).
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    ciphertext BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- The cell's root certificate authority; its private key is the secret 'ca.key'.
CREATE TABLE ca (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cert_pem TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- Bumped at every revocation; each CRL carries the number it was issued with.
    crl_number INTEGER NOT NULL DEFAULT 1
);

-- Certificates issued by the cell's CA. Their private keys are handed out once and never kept.
CREATE TABLE certificates (
    id TEXT PRIMARY KEY,
    serial TEXT NOT NULL UNIQUE,
    names TEXT NOT NULL,
    ips TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    cert_pem TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    revocation_reason TEXT
);

-- Public keys of other cells this cell trusts.
CREATE TABLE trust_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('age', 'wireguard')),
    public_key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

-- API keys for scripts. Only the SHA-256 of the token is kept; the token is shown once.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    rate_limit_per_minute INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    rotated_at TEXT,
    last_used_at TEXT,
    expires_at TEXT
);
