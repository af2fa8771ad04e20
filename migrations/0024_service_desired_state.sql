-- Whether the owner wants an installed service's container running: a container stopped
-- on purpose (POST /api/containers/{id}/stop) stays stopped across reconciles and restarts
-- of picd, until it is started again. Every service installed before runs.
ALTER TABLE services_installed ADD COLUMN desired_state TEXT NOT NULL DEFAULT 'running'
    CHECK (desired_state IN ('running', 'stopped'));
