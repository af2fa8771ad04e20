-- The mail service's own desired state besides its accounts: aliases (a local part at the
-- cell's domain delivered into an account's mailbox), per-mailbox quota overrides, and the
-- default quota. Both go with the account they point at (its data is archived by the
-- reconcile, the alias and the override simply end).
CREATE TABLE mail_aliases (
    alias      TEXT PRIMARY KEY,
    -- Always 'mail': present so the target can reference the account row.
    service_id TEXT NOT NULL DEFAULT 'mail' CHECK (service_id = 'mail'),
    target     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    FOREIGN KEY (service_id, target)
        REFERENCES service_accounts (service_id, username) ON DELETE CASCADE
);

CREATE INDEX mail_aliases_target ON mail_aliases (target);

CREATE TABLE mail_quotas (
    username    TEXT PRIMARY KEY,
    service_id  TEXT NOT NULL DEFAULT 'mail' CHECK (service_id = 'mail'),
    limit_bytes INTEGER NOT NULL CHECK (limit_bytes BETWEEN 1024 AND 1099511627776),
    updated_at  TEXT NOT NULL,
    FOREIGN KEY (service_id, username)
        REFERENCES service_accounts (service_id, username) ON DELETE CASCADE
);

-- The quota of a mailbox without an override: 1 GiB unless the owner sets another.
CREATE TABLE mail_settings (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    quota_default_bytes INTEGER NOT NULL DEFAULT 1073741824
        CHECK (quota_default_bytes BETWEEN 1024 AND 1099511627776)
);

INSERT INTO mail_settings (id) VALUES (1);
