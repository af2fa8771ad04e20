-- Zones the cell serves. The SOA is built from these fields; serial goes up with every change.
CREATE TABLE dns_zones (
    name TEXT PRIMARY KEY,
    serial INTEGER NOT NULL,
    default_ttl INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

-- Records: `public` ones are seen by everyone, `internal` ones only by peers. `wire` is the
-- record in DNS wire format (what the server loads); `data` its presentation text.
CREATE TABLE dns_records (
    id TEXT PRIMARY KEY,
    zone TEXT NOT NULL REFERENCES dns_zones(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    ttl INTEGER NOT NULL,
    data TEXT NOT NULL,
    view TEXT NOT NULL CHECK (view IN ('public', 'internal')),
    wire BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (zone, name, type, data, view)
);
CREATE INDEX dns_records_name ON dns_records(zone, name);

-- Secondary servers allowed to transfer the public zones (and told of changes by NOTIFY).
CREATE TABLE dns_secondaries (
    address TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
