-- Routing: the cell's firewall rules and IP allow/block lists, rendered by picd into its one
-- nftables table (`inet picd`). Empty ports, rate and conntrack are 0 / '' rather than NULL so
-- the UNIQUE constraint finds a duplicate rule (SQLite treats NULLs as distinct).
CREATE TABLE routing_firewall_rules (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    chain       TEXT NOT NULL CHECK (chain IN ('input', 'forward', 'output')),
    protocol    TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp', 'icmp', 'any')),
    port_start  INTEGER NOT NULL DEFAULT 0 CHECK (port_start BETWEEN 0 AND 65535),
    port_end    INTEGER NOT NULL DEFAULT 0 CHECK (port_end BETWEEN 0 AND 65535),
    action      TEXT NOT NULL CHECK (action IN ('drop', 'accept', 'reject', 'limit')),
    limit_rate  INTEGER NOT NULL DEFAULT 0,
    limit_unit  TEXT NOT NULL DEFAULT '' CHECK (limit_unit IN ('', 'second', 'minute', 'hour')),
    conntrack   TEXT NOT NULL DEFAULT '',
    is_system   INTEGER NOT NULL DEFAULT 0,
    position    INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (chain, protocol, port_start, port_end, action, limit_rate, limit_unit, conntrack)
);

-- System rules come first in their chain and cannot be deleted.
INSERT INTO routing_firewall_rules
    (id, name, chain, protocol, action, conntrack, is_system, position, created_at)
VALUES
    ('system-input-invalid', 'Drop invalid packets', 'input', 'any', 'drop', 'invalid', 1, 0, '1970-01-01T00:00:00Z'),
    ('system-forward-invalid', 'Drop invalid forwarded packets', 'forward', 'any', 'drop', 'invalid', 1, 1, '1970-01-01T00:00:00Z'),
    ('system-input-established', 'Accept established and related', 'input', 'any', 'accept', 'established,related', 1, 2, '1970-01-01T00:00:00Z');

CREATE TABLE routing_ip_list (
    id          TEXT PRIMARY KEY,
    list_type   TEXT NOT NULL CHECK (list_type IN ('blacklist', 'whitelist')),
    -- An address or a network in canonical form (ipnet's Display).
    ip_address  TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    -- pending_add until the table holding it was applied, then active.
    status      TEXT NOT NULL DEFAULT 'pending_add' CHECK (status IN ('pending_add', 'active')),
    expires_at  TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (list_type, ip_address)
);
