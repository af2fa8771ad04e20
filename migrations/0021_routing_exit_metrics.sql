-- Per-peer traffic through each exit: per minute, the packets and bytes a peer's forwarded
-- traffic (out through the exit and back) grew by, keyed by the peer and the exit it went
-- through. Names, not foreign keys: a removed peer or exit keeps its history until the
-- retention deletes it, as routing_metrics does.
CREATE TABLE routing_exit_metrics (
    bucket        TEXT NOT NULL,
    peer_name     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    packets       INTEGER NOT NULL DEFAULT 0,
    bytes         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, peer_name, connection_id)
);
