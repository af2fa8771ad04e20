-- Extra sites Caddy serves for the cell (services add theirs): a host name and the backend
-- Caddy forwards it to. The cell's own domain is always served and needs no row.
CREATE TABLE caddy_routes (
    host TEXT PRIMARY KEY,
    upstream TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- The certificate picd issued from the cell's CA for Caddy (internal TLS); its key is the
-- vault secret 'caddy.tls.key'.
CREATE TABLE caddy_certificate (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    hosts TEXT NOT NULL,
    cert_pem TEXT NOT NULL,
    not_after TEXT NOT NULL,
    issued_at TEXT NOT NULL
);
