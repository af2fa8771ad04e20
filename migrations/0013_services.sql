-- The service store: images picd built (and the Id the engine gave each, so a container is
-- never made from an image that changed behind picd's back), and the services the owner
-- installed (desired state: the Docker driver makes the engine match these rows).
CREATE TABLE service_images (
    service_id  TEXT PRIMARY KEY,
    recipe_hash TEXT NOT NULL,
    image_id    TEXT NOT NULL,
    built_at    TEXT NOT NULL
);

CREATE TABLE services_installed (
    service_id   TEXT PRIMARY KEY,
    -- The loopback port picd allocated for the service's HTTP endpoint.
    http_port    INTEGER NOT NULL UNIQUE CHECK (http_port BETWEEN 1024 AND 65535),
    installed_at TEXT NOT NULL
);
