-- Routing: rate-limit rules on the cell's ports, applied in the prerouting chain of picd's
-- table (`inet picd`), before connection tracking: per source address (max_pps), per port in
-- total (max_port_pps), a block, or allow-only for the addresses on the whitelist. Empty ports
-- and rates are 0 rather than NULL so the UNIQUE constraint finds a second rule on the same
-- ports (SQLite treats NULLs as distinct).
CREATE TABLE routing_rate_limits (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    protocol      TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp', 'icmp', 'any')),
    port_start    INTEGER NOT NULL DEFAULT 0 CHECK (port_start BETWEEN 0 AND 65535),
    port_end      INTEGER NOT NULL DEFAULT 0 CHECK (port_end BETWEEN 0 AND 65535),
    rule_type     TEXT NOT NULL CHECK (rule_type IN ('block', 'rate_limit', 'allow_only')),
    max_pps       INTEGER NOT NULL DEFAULT 0 CHECK (max_pps >= 0),
    max_port_pps  INTEGER NOT NULL DEFAULT 0 CHECK (max_port_pps >= 0),
    created_at    TEXT NOT NULL,
    UNIQUE (protocol, port_start, port_end)
);
