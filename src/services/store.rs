//! SQL of the service store: built images and installed services.

use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub service_id: String,
    pub recipe_hash: String,
    pub image_id: String,
    pub built_at: String,
}

#[derive(Debug, Clone)]
pub struct Installed {
    pub service_id: String,
    pub http_port: u16,
    pub installed_at: String,
}

pub fn record_image(conn: &Connection, image: &BuiltImage) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO service_images (service_id, recipe_hash, image_id, built_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(service_id) DO UPDATE SET recipe_hash = excluded.recipe_hash,
             image_id = excluded.image_id, built_at = excluded.built_at",
        params![
            image.service_id,
            image.recipe_hash,
            image.image_id,
            image.built_at
        ],
    )?;
    Ok(())
}

pub fn image(conn: &Connection, service_id: &str) -> rusqlite::Result<Option<BuiltImage>> {
    conn.query_row(
        "SELECT service_id, recipe_hash, image_id, built_at FROM service_images
         WHERE service_id = ?1",
        [service_id],
        |row| {
            Ok(BuiltImage {
                service_id: row.get(0)?,
                recipe_hash: row.get(1)?,
                image_id: row.get(2)?,
                built_at: row.get(3)?,
            })
        },
    )
    .optional()
}

fn installed_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Installed> {
    Ok(Installed {
        service_id: row.get(0)?,
        http_port: row.get(1)?,
        installed_at: row.get(2)?,
    })
}

pub fn installed(conn: &Connection) -> rusqlite::Result<Vec<Installed>> {
    let mut stmt = conn.prepare(
        "SELECT service_id, http_port, installed_at FROM services_installed ORDER BY service_id",
    )?;
    let rows = stmt.query_map([], installed_from_row)?;
    rows.collect()
}

pub fn installed_one(conn: &Connection, service_id: &str) -> rusqlite::Result<Option<Installed>> {
    conn.query_row(
        "SELECT service_id, http_port, installed_at FROM services_installed
         WHERE service_id = ?1",
        [service_id],
        installed_from_row,
    )
    .optional()
}

pub fn insert_installed(conn: &Connection, installed: &Installed) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO services_installed (service_id, http_port, installed_at) VALUES (?1, ?2, ?3)",
        params![
            installed.service_id,
            installed.http_port,
            installed.installed_at
        ],
    )?;
    Ok(())
}

pub fn delete_installed(conn: &Connection, service_id: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "DELETE FROM services_installed WHERE service_id = ?1",
        [service_id],
    )? > 0)
}

pub fn ports_in_use(conn: &Connection) -> rusqlite::Result<Vec<u16>> {
    let mut stmt = conn.prepare("SELECT http_port FROM services_installed")?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    rows.collect()
}
