-- This cell's own id, made once for its state directory (and kept by a backup and its
-- restore: the restored cell is the same cell). picd marks the engine objects it creates with
-- it, so two cells on one Docker engine each see and manage only their own. Random, never
-- derived from the vault key or the CA, which are replaced by a rekey or a new scope.
CREATE TABLE cell_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cell_id TEXT NOT NULL CHECK (length(cell_id) = 32)
);
INSERT INTO cell_identity (id, cell_id) VALUES (1, lower(hex(randomblob(16))));
