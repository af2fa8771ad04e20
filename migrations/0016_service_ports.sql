-- Every endpoint of an installed service gets its own loopback port (HTTP through Caddy, or
-- raw TCP such as IMAP and LMTP), unique across all services. The HTTP port moves here from
-- services_installed, whose rebuilt table keeps only the service and its install time.
CREATE TABLE services_installed_new (
    service_id   TEXT PRIMARY KEY,
    installed_at TEXT NOT NULL
);
INSERT INTO services_installed_new (service_id, installed_at)
    SELECT service_id, installed_at FROM services_installed;

CREATE TABLE service_ports (
    service_id TEXT NOT NULL,
    -- The manifest's endpoint name ("http", "imap", "lmtp").
    endpoint   TEXT NOT NULL,
    port       INTEGER NOT NULL UNIQUE CHECK (port BETWEEN 1024 AND 65535),
    PRIMARY KEY (service_id, endpoint)
);
INSERT INTO service_ports (service_id, endpoint, port)
    SELECT service_id, 'http', http_port FROM services_installed;

DROP TABLE services_installed;
ALTER TABLE services_installed_new RENAME TO services_installed;
