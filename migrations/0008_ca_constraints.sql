-- The cell's CA is limited to the cell's domain and subnets (a critical NameConstraints
-- extension). The scope it was issued for, as JSON {"domain","subnet_v4","subnet_v6"}, and
-- its serial (hex). A CA from before this migration has neither: picd re-issues it at start.
ALTER TABLE ca ADD COLUMN name_constraints TEXT;
ALTER TABLE ca ADD COLUMN serial TEXT;

-- The serial (hex) of the CA that signed each certificate; NULL for those signed before this
-- migration, by the CA then in force (set when that CA is retired).
ALTER TABLE certificates ADD COLUMN issuer_serial TEXT;

-- CAs replaced by a new one (on upgrade, or when the cell's domain or subnets changed). Each
-- is kept, with its key (the vault secret `key_secret`), to sign the CRL of the certificates
-- it issued until the last of them expires; it issues nothing new.
CREATE TABLE retired_cas (
    serial TEXT PRIMARY KEY,
    cert_pem TEXT NOT NULL,
    key_secret TEXT NOT NULL,
    crl_number INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT NOT NULL
);
