-- TSIG keys for zone transfers and NOTIFY (RFC 8945). The secret itself lives in the vault
-- (secret name `dns/tsig/<name>`); this table only names the key and its algorithm.
CREATE TABLE dns_tsig_keys (
    name TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Which key a secondary must sign its transfer requests with (and NOTIFY to it is signed
-- with). A key in use cannot be deleted; a secondary's removal drops its binding.
CREATE TABLE dns_secondary_tsig (
    address TEXT PRIMARY KEY REFERENCES dns_secondaries(address) ON DELETE CASCADE,
    key_name TEXT NOT NULL REFERENCES dns_tsig_keys(name)
);
