//! Local users of the console: a name, a role and an Argon2id password hash
//! (see [`super::auth`]), in the `users` table of the console store.

use rusqlite::{OptionalExtension, params};

use super::store::{ConsoleStore, StoreError};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Search, alerts, the landing page.
    Viewer,
    /// All a viewer may, plus the admin pages (audit, users).
    Admin,
}

impl Role {
    /// `viewer` or `admin`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "viewer" => Ok(Role::Viewer),
            "admin" => Ok(Role::Admin),
            other => Err(StoreError::Data(format!("unknown role {other:?}"))),
        }
    }
}

/// One stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Sign-in name.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// When the user was added, UTC milliseconds.
    pub created_ms: i64,
    /// When the role or password last changed, UTC milliseconds (sessions
    /// opened before it end).
    pub updated_ms: i64,
}

/// Checks a user name: 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("a user name has 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(format!(
            "user name {name:?} may hold only letters, digits, '.', '_', '-' and '@'"
        ));
    }
    Ok(())
}

impl ConsoleStore {
    /// Adds `name`, or replaces its role and password when it exists;
    /// whether it was new.
    pub fn put_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let conn = self.lock();
        let existed: bool = conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM users WHERE name = ?1)",
                [name],
                |r| r.get(0),
            )
            .map_err(self.error("find user"))?;
        conn.execute(
            "INSERT INTO users (name, role, password, created_ms, updated_ms) \
             VALUES (?1, ?2, ?3, ?4, ?4) \
             ON CONFLICT(name) DO UPDATE SET role = ?2, password = ?3, updated_ms = ?4",
            params![name, role.as_str(), password_hash, now_ms],
        )
        .map_err(self.error("write user"))?;
        Ok(!existed)
    }

    /// The user `name`, if any.
    pub fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT name, role, password, created_ms, updated_ms FROM users WHERE name = ?1",
                [name],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(self.error("read user"))?;
        row.map(|(name, role, password_hash, created_ms, updated_ms)| {
            Ok(User {
                name,
                role: Role::parse(&role)?,
                password_hash,
                created_ms,
                updated_ms,
            })
        })
        .transpose()
    }

    /// Removes `name`; whether it existed.
    pub fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .execute("DELETE FROM users WHERE name = ?1", [name])
            .map_err(self.error("remove user"))?;
        Ok(n > 0)
    }

    /// Every user, by name (without their hashes).
    pub fn users(&self) -> Result<Vec<(String, Role, i64)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT name, role, created_ms FROM users ORDER BY name")
            .map_err(self.error("list users"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(self.error("list users"))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, role, created) = row.map_err(self.error("list users"))?;
            out.push((name, Role::parse(&role)?, created));
        }
        Ok(out)
    }

    /// Whether any user exists (the console's sign-in is then in force on
    /// the read APIs).
    pub fn has_users(&self) -> Result<bool, StoreError> {
        self.lock()
            .query_row("SELECT EXISTS(SELECT 1 FROM users)", [], |r| r.get(0))
            .map_err(self.error("count users"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_added_replaced_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConsoleStore::open_in(dir.path()).unwrap();
        assert!(!store.has_users().unwrap());
        assert!(store.put_user("ann", Role::Viewer, "h1", 1).unwrap());
        assert!(!store.put_user("ann", Role::Admin, "h2", 2).unwrap());
        let ann = store.user("ann").unwrap().unwrap();
        assert_eq!((ann.role, ann.password_hash.as_str()), (Role::Admin, "h2"));
        assert_eq!((ann.created_ms, ann.updated_ms), (1, 2));
        assert!(store.user("bob").unwrap().is_none());
        assert!(store.has_users().unwrap());
        // A second handle (the CLI while the service runs) sees the same.
        let other = ConsoleStore::open_in(dir.path()).unwrap();
        assert_eq!(other.users().unwrap(), vec![("ann".into(), Role::Admin, 1)]);
        assert!(other.remove_user("ann").unwrap());
        assert!(!other.remove_user("ann").unwrap());
        assert!(store.user("ann").unwrap().is_none());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("ann.o-k_1@x").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("<script>").is_err());
        assert!(check_name(&"a".repeat(65)).is_err());
    }
}
