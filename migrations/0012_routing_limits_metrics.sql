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

-- Traffic metrics from the table's counters: per minute, the packets and bytes that reached
-- the cell (prerouting) and those picd's rules dropped, in all (port 0) and per port that a
-- rule names (a range by its first port). Rows older than the retention are deleted.
CREATE TABLE routing_metrics (
    bucket           TEXT NOT NULL,
    port             INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
    packets_seen     INTEGER NOT NULL DEFAULT 0,
    packets_dropped  INTEGER NOT NULL DEFAULT 0,
    bytes_seen       INTEGER NOT NULL DEFAULT 0,
    bytes_dropped    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, port)
);
