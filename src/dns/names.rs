//! Published names: how any domain puts names into DNS without DNS knowing that domain. A
//! domain publishes a name (relative to the cell's domain, `@` for the domain itself) with its
//! addresses inside its own transaction, and withdraws it the same way; DNS keeps them in its
//! own table (`dns_names`) and serves them in the cell's zone. A name has one owner: another
//! domain publishing the same name is refused.

use std::net::IpAddr;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::ApiError;

/// The cell's domain itself.
pub const APEX: &str = "@";

/// Which clients a published name answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameView {
    /// Only the cell's peers (served when split horizon is on).
    Internal,
    /// Everyone, peers included.
    Public,
}

impl NameView {
    fn as_str(self) -> &'static str {
        match self {
            NameView::Internal => "internal",
            NameView::Public => "public",
        }
    }

    fn parse(text: &str) -> Option<NameView> {
        match text {
            "internal" => Some(NameView::Internal),
            "public" => Some(NameView::Public),
            _ => None,
        }
    }
}

/// One published name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedName {
    pub name: String,
    pub view: NameView,
    pub owner: String,
    pub addresses: Vec<IpAddr>,
}

/// Publishes `name` for `owner` (or replaces its view and addresses when `owner` already
/// holds it). A name held by another owner is refused with a conflict.
pub fn publish(
    conn: &Connection,
    owner: &str,
    name: &str,
    view: NameView,
    addresses: &[IpAddr],
) -> Result<(), ApiError> {
    if let Some(holder) = owner_of(conn, name)? {
        if holder != owner {
            return Err(ApiError::conflict(
                "name_taken",
                "this name is already published by another part of the cell",
            ));
        }
    }
    let addresses: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
    let addresses = serde_json::to_string(&addresses).map_err(|e| ApiError::Internal(e.into()))?;
    conn.prepare_cached(
        "INSERT INTO dns_names (name, view, owner, addresses) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(name) DO UPDATE SET view = ?2, addresses = ?4",
    )?
    .execute(params![name, view.as_str(), owner, addresses])?;
    Ok(())
}

/// Withdraws `name` if `owner` holds it; true when something was withdrawn.
pub fn withdraw(conn: &Connection, owner: &str, name: &str) -> Result<bool, ApiError> {
    let removed = conn
        .prepare_cached("DELETE FROM dns_names WHERE name = ?1 AND owner = ?2")?
        .execute(params![name, owner])?;
    Ok(removed > 0)
}

/// The owner holding `name`, if any.
pub fn owner_of(conn: &Connection, name: &str) -> Result<Option<String>, ApiError> {
    Ok(conn
        .prepare_cached("SELECT owner FROM dns_names WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?)
}

/// The view `name` is served in, if it is published.
#[allow(dead_code)] // for domains that publish in both views (services, linked cells)
pub fn view_of(conn: &Connection, name: &str) -> Result<Option<NameView>, ApiError> {
    Ok(list(conn)?
        .into_iter()
        .find(|n| n.name == name)
        .map(|n| n.view))
}

/// Every published name, in name order. A stored row that no longer reads is skipped.
pub fn list(conn: &Connection) -> Result<Vec<PublishedName>, ApiError> {
    let mut stmt =
        conn.prepare_cached("SELECT name, view, owner, addresses FROM dns_names ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut names = Vec::new();
    for row in rows {
        let (name, view, owner, addresses) = row?;
        let Some(view) = NameView::parse(&view) else {
            tracing::warn!(%name, "skipping a published name with an unknown view");
            continue;
        };
        let addresses: Vec<String> = serde_json::from_str(&addresses).unwrap_or_default();
        let addresses = addresses.iter().filter_map(|a| a.parse().ok()).collect();
        names.push(PublishedName {
            name,
            view,
            owner,
            addresses,
        });
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE peers (name TEXT, address_v4 TEXT, address_v6 TEXT);")
            .unwrap();
        conn.execute_batch(include_str!("../../migrations/0010_dns_names.sql"))
            .unwrap();
        conn
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_published_name_is_listed_with_its_view_and_owner() {
        let conn = db();
        publish(
            &conn,
            "peers",
            "alice",
            NameView::Internal,
            &[ip("10.77.0.2"), ip("fd77::2")],
        )
        .unwrap();
        publish(
            &conn,
            "services",
            "files",
            NameView::Public,
            &[ip("10.77.0.1")],
        )
        .unwrap();
        let names = list(&conn).unwrap();
        assert_eq!(names.len(), 2);
        assert_eq!(names[0].name, "alice");
        assert_eq!(names[0].owner, "peers");
        assert_eq!(names[0].addresses, [ip("10.77.0.2"), ip("fd77::2")]);
        assert_eq!(view_of(&conn, "alice").unwrap(), Some(NameView::Internal));
        assert_eq!(view_of(&conn, "files").unwrap(), Some(NameView::Public));
        assert_eq!(view_of(&conn, "bob").unwrap(), None);
    }

    #[test]
    fn the_owner_republishes_and_withdraws() {
        let conn = db();
        publish(
            &conn,
            "peers",
            "alice",
            NameView::Internal,
            &[ip("10.77.0.2")],
        )
        .unwrap();
        publish(
            &conn,
            "peers",
            "alice",
            NameView::Public,
            &[ip("10.77.0.3")],
        )
        .unwrap();
        let names = list(&conn).unwrap();
        assert_eq!(names.len(), 1);
        assert_eq!(names[0].addresses, [ip("10.77.0.3")]);
        assert_eq!(names[0].view, NameView::Public);
        assert!(
            !withdraw(&conn, "services", "alice").unwrap(),
            "only the owner withdraws"
        );
        assert!(withdraw(&conn, "peers", "alice").unwrap());
        assert!(list(&conn).unwrap().is_empty());
        assert!(!withdraw(&conn, "peers", "alice").unwrap());
    }

    #[test]
    fn two_owners_of_one_name_are_refused() {
        let conn = db();
        publish(
            &conn,
            "peers",
            "files",
            NameView::Internal,
            &[ip("10.77.0.2")],
        )
        .unwrap();
        let err = publish(
            &conn,
            "services",
            "files",
            NameView::Public,
            &[ip("10.77.0.1")],
        );
        assert!(matches!(err, Err(ApiError::Conflict { .. })), "{err:?}");
        assert_eq!(owner_of(&conn, "files").unwrap().as_deref(), Some("peers"));
        assert_eq!(list(&conn).unwrap()[0].addresses, [ip("10.77.0.2")]);
    }
}
