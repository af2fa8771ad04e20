//! SQL of the service store: built images and installed services.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub service_id: String,
    pub recipe_hash: String,
    pub image_id: String,
    pub built_at: String,
}

/// An installed service and the loopback port of each of its endpoints.
#[derive(Debug, Clone)]
pub struct Installed {
    pub service_id: String,
    /// Endpoint name to port, sorted (the container's spec hash reads them in this order).
    pub ports: BTreeMap<String, u16>,
    pub installed_at: String,
    /// Whether the owner stopped it on purpose (`POST /api/containers/{id}/stop`): the
    /// reconciler then keeps its container stopped instead of bringing it back.
    pub desired: Desired,
}

/// What the owner wants of an installed service's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    Running,
    Stopped,
}

impl Desired {
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Running => "running",
            Desired::Stopped => "stopped",
        }
    }

    /// A value the column's CHECK does not allow cannot be read; anything but "stopped" runs.
    fn from_column(value: &str) -> Self {
        match value {
            "stopped" => Desired::Stopped,
            _ => Desired::Running,
        }
    }
}

impl Installed {
    pub fn port(&self, endpoint: &str) -> Option<u16> {
        self.ports.get(endpoint).copied()
    }
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

fn ports_of(conn: &Connection, service_id: &str) -> rusqlite::Result<BTreeMap<String, u16>> {
    let mut stmt =
        conn.prepare("SELECT endpoint, port FROM service_ports WHERE service_id = ?1")?;
    let rows = stmt.query_map([service_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

type InstalledRow = (String, String, String);

fn installed_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<InstalledRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn with_ports(
    conn: &Connection,
    (service_id, installed_at, desired): InstalledRow,
) -> rusqlite::Result<Installed> {
    Ok(Installed {
        ports: ports_of(conn, &service_id)?,
        service_id,
        installed_at,
        desired: Desired::from_column(&desired),
    })
}

pub fn installed(conn: &Connection) -> rusqlite::Result<Vec<Installed>> {
    let mut stmt = conn.prepare(
        "SELECT service_id, installed_at, desired_state FROM services_installed
         ORDER BY service_id",
    )?;
    let rows = stmt.query_map([], installed_row)?;
    let rows: Vec<InstalledRow> = rows.collect::<rusqlite::Result<_>>()?;
    rows.into_iter().map(|row| with_ports(conn, row)).collect()
}

pub fn installed_one(conn: &Connection, service_id: &str) -> rusqlite::Result<Option<Installed>> {
    let row = conn
        .query_row(
            "SELECT service_id, installed_at, desired_state FROM services_installed
             WHERE service_id = ?1",
            [service_id],
            installed_row,
        )
        .optional()?;
    row.map(|row| with_ports(conn, row)).transpose()
}

/// Records whether the service's container should run; false when it is not installed.
pub fn set_desired(
    conn: &Connection,
    service_id: &str,
    desired: Desired,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE services_installed SET desired_state = ?2 WHERE service_id = ?1",
        params![service_id, desired.as_str()],
    )? > 0)
}

pub fn insert_installed(conn: &Connection, installed: &Installed) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO services_installed (service_id, installed_at, desired_state)
         VALUES (?1, ?2, ?3)",
        params![
            installed.service_id,
            installed.installed_at,
            installed.desired.as_str()
        ],
    )?;
    for (endpoint, port) in &installed.ports {
        conn.execute(
            "INSERT INTO service_ports (service_id, endpoint, port) VALUES (?1, ?2, ?3)",
            params![installed.service_id, endpoint, port],
        )?;
    }
    Ok(())
}

/// Deletes the service's row and its ports.
pub fn delete_installed(conn: &Connection, service_id: &str) -> rusqlite::Result<bool> {
    conn.execute(
        "DELETE FROM service_ports WHERE service_id = ?1",
        [service_id],
    )?;
    Ok(conn.execute(
        "DELETE FROM services_installed WHERE service_id = ?1",
        [service_id],
    )? > 0)
}

/// Every port any installed service holds, whatever the endpoint.
pub fn ports_in_use(conn: &Connection) -> rusqlite::Result<Vec<u16>> {
    let mut stmt = conn.prepare("SELECT port FROM service_ports")?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_16_moves_each_http_port_into_service_ports() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../migrations/0013_services.sql"))
            .unwrap();
        conn.execute(
            "INSERT INTO services_installed (service_id, http_port, installed_at)
             VALUES ('files', 20001, 't')",
            [],
        )
        .unwrap();
        conn.execute_batch(include_str!("../../migrations/0016_service_ports.sql"))
            .unwrap();
        conn.execute_batch(include_str!(
            "../../migrations/0024_service_desired_state.sql"
        ))
        .unwrap();
        let files = installed_one(&conn, "files").unwrap().expect("kept");
        assert_eq!(files.port("http"), Some(20001));
        assert_eq!(files.installed_at, "t");

        // A port is one endpoint's, across services (the install's transaction rolls back).
        let mail = Installed {
            service_id: "mail".into(),
            ports: BTreeMap::from([("imap".into(), 20002), ("lmtp".into(), 20001)]),
            installed_at: "t".into(),
            desired: Desired::Running,
        };
        let tx = conn.transaction().unwrap();
        assert!(insert_installed(&tx, &mail).is_err());
        drop(tx);
        assert_eq!(ports_in_use(&conn).unwrap(), [20001]);
        assert!(delete_installed(&conn, "files").unwrap());
        assert!(ports_in_use(&conn).unwrap().is_empty());
    }
}
