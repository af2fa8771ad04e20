-- Endpoints that clients reach take their standard port when it is free (993 for IMAP over
-- TLS, 587 for submission), so a port may now be below 1024. The table is rebuilt for its
-- new CHECK; its rows are kept.
CREATE TABLE service_ports_new (
    service_id TEXT NOT NULL,
    endpoint   TEXT NOT NULL,
    port       INTEGER NOT NULL UNIQUE CHECK (port BETWEEN 1 AND 65535),
    PRIMARY KEY (service_id, endpoint)
);
INSERT INTO service_ports_new (service_id, endpoint, port)
    SELECT service_id, endpoint, port FROM service_ports;
DROP TABLE service_ports;
ALTER TABLE service_ports_new RENAME TO service_ports;

-- The certificate picd's CA issued for a service that speaks TLS itself (mail's IMAP and
-- submission), for `<subdomain>.<cell domain>`; its key is in the vault
-- (`service.<id>.tls.key`), never here.
CREATE TABLE service_certificates (
    service_id TEXT PRIMARY KEY,
    hosts      TEXT NOT NULL,
    cert_pem   TEXT NOT NULL,
    not_after  TEXT NOT NULL,
    issued_at  TEXT NOT NULL
);
