-- Accounts in the installed services: one per (service, person). The password itself is in
-- the vault (secret `service-account/<service>/<username>`); the row keeps only the hash the
-- service's own account file holds, so a reconcile rewrites that file without the vault.
-- A peer's accounts go with the peer (its data is archived by the reconcile, not destroyed).
CREATE TABLE service_accounts (
    service_id    TEXT NOT NULL,
    username      TEXT NOT NULL,
    -- The peer the account is for; NULL for the owner's own account.
    peer_name     TEXT REFERENCES peers(name) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (service_id, username)
);

CREATE INDEX service_accounts_peer ON service_accounts (peer_name);

-- The store's settings: how long the data of a removed account is kept in the archive.
CREATE TABLE service_settings (
    id                     INTEGER PRIMARY KEY CHECK (id = 1),
    archive_retention_days INTEGER NOT NULL DEFAULT 30
        CHECK (archive_retention_days BETWEEN 1 AND 3650)
);

INSERT INTO service_settings (id) VALUES (1);
