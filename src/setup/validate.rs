//! The wizard's admin step (the cell's own settings are validated in `crate::cell`).

use serde_json::Value;

use crate::error::ApiError;
use crate::validation::{object, string, Problems};

/// The admin account step. The password is hashed before anything is stored.
pub struct AdminStep {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for AdminStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("AdminStep")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

pub fn admin_step(value: &Value) -> Result<AdminStep, ApiError> {
    let mut problems = Problems::default();
    let mut step = AdminStep {
        username: String::new(),
        password: String::new(),
    };
    if let Some(map) = object(value, &["username", "password"], &mut problems, "") {
        if let Some(u) = string(map, "username", &mut problems, "") {
            let u = u.to_lowercase();
            if let Err(ApiError::Invalid { fields }) =
                crate::auth::store::validate_username("username", &u)
            {
                fields.into_iter().for_each(|(f, m)| problems.add(&f, m));
            }
            step.username = u;
        }
        match map.get("password") {
            Some(Value::String(p)) => {
                if let Err(ApiError::Invalid { fields }) =
                    crate::auth::password::check_policy("password", p, &step.username)
                {
                    fields.into_iter().for_each(|(f, m)| problems.add(&f, m));
                }
                step.password = p.clone();
            }
            Some(_) => problems.add("password", "must be a string"),
            None => problems.add("password", "is required"),
        }
    }
    problems.into_result(step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn admin_step_never_echoes_the_password() {
        let err = admin_step(&json!({"username": "admin", "password": "short"})).unwrap_err();
        assert!(!format!("{err:?}").contains("short\""));
    }
}
