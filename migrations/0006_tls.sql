-- How Caddy gets its certificates, chosen in the wizard and in /api/config: 'internal' (the
-- cell's own CA) or 'acme' (public certificates from an ACME CA, Let's Encrypt unless
-- acme_ca names another directory).
ALTER TABLE cell_config ADD COLUMN tls_mode TEXT NOT NULL DEFAULT 'internal'
    CHECK (tls_mode IN ('internal', 'acme'));
ALTER TABLE cell_config ADD COLUMN acme_email TEXT NOT NULL DEFAULT '';
ALTER TABLE cell_config ADD COLUMN acme_ca TEXT NOT NULL DEFAULT '';
