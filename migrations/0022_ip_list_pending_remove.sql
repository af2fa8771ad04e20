-- An IP list entry the owner deleted stays, as pending_remove, until a table without it has
-- been applied; then it goes. The status check gains that value (SQLite cannot alter a
-- CHECK, so the table is rebuilt with its rows).
CREATE TABLE routing_ip_list_new (
    id          TEXT PRIMARY KEY,
    list_type   TEXT NOT NULL CHECK (list_type IN ('blacklist', 'whitelist')),
    -- An address or a network in canonical form (ipnet's Display).
    ip_address  TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    -- pending_add until the table holding it was applied, then active; pending_remove once
    -- deleted, until the table without it was applied.
    status      TEXT NOT NULL DEFAULT 'pending_add'
                CHECK (status IN ('pending_add', 'active', 'pending_remove')),
    expires_at  TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (list_type, ip_address)
);
INSERT INTO routing_ip_list_new (id, list_type, ip_address, reason, status, expires_at, created_at)
    SELECT id, list_type, ip_address, reason, status, expires_at, created_at FROM routing_ip_list;
DROP TABLE routing_ip_list;
ALTER TABLE routing_ip_list_new RENAME TO routing_ip_list;
