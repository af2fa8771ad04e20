-- Routing: each peer's policy, whether its traffic may leave the cell for the internet and
-- whether it may reach the other peers. A peer without a row has the defaults (both on), so
-- peers made before this migration keep what they had. The row goes with its peer (foreign
-- keys are on in every connection picd opens).
CREATE TABLE routing_peer_policy (
    peer_name    TEXT PRIMARY KEY REFERENCES peers(name) ON DELETE CASCADE ON UPDATE CASCADE,
    internet     INTEGER NOT NULL DEFAULT 1 CHECK (internet IN (0, 1)),
    peer_to_peer INTEGER NOT NULL DEFAULT 1 CHECK (peer_to_peer IN (0, 1)),
    updated_at   TEXT NOT NULL
);
