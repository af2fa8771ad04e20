-- Names that domains publish into DNS without DNS reading their tables: a name relative to
-- the cell's domain ('@' for the domain itself), the view it is served in, the domain that
-- owns it (only its owner may change or withdraw it) and its addresses (a JSON array).
CREATE TABLE dns_names (
    name TEXT PRIMARY KEY,
    view TEXT NOT NULL CHECK (view IN ('internal', 'public')),
    owner TEXT NOT NULL,
    addresses TEXT NOT NULL
);

-- Peers that exist already publish their names.
INSERT INTO dns_names (name, view, owner, addresses)
SELECT name, 'internal', 'peers', json_array(address_v4, address_v6) FROM peers;
