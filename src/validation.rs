//! Field validation shared by every domain: input arrives as a JSON object, and every
//! problem, a wrong type included, comes back as a message on its field
//! (`{"fields": {...}}`, see `ApiError::Invalid`).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Field errors collected while reading one step.
#[derive(Default)]
pub struct Problems(Vec<(String, String)>);

impl Problems {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push((field.to_string(), message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The collected problems as an error (for paths where a field was missing or wrong).
    pub fn into_error(self, prefix: &str) -> ApiError {
        match self.into_result(()) {
            Err(e) => e,
            Ok(()) => ApiError::invalid(prefix.trim_end_matches('.'), "is incomplete"),
        }
    }

    pub fn into_result<T>(self, value: T) -> Result<T, ApiError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ApiError::Invalid { fields: self.0 })
        }
    }
}

/// Reads a step's object: refuses keys the step does not have.
pub fn object<'a>(
    value: &'a Value,
    allowed: &[&str],
    problems: &mut Problems,
    prefix: &str,
) -> Option<&'a Map<String, Value>> {
    let Some(map) = value.as_object() else {
        problems.add(prefix.trim_end_matches('.'), "must be an object");
        return None;
    };
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            problems.add(&format!("{prefix}{key}"), "is not a known field");
        }
    }
    Some(map)
}

pub(crate) fn string(
    map: &Map<String, Value>,
    key: &str,
    problems: &mut Problems,
    prefix: &str,
) -> Option<String> {
    match map.get(key) {
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(_) => {
            problems.add(&format!("{prefix}{key}"), "must be a string");
            None
        }
        None => {
            problems.add(&format!("{prefix}{key}"), "is required");
            None
        }
    }
}

pub(crate) fn check<T>(
    problems: &mut Problems,
    field: &str,
    result: Result<T, String>,
) -> Option<T> {
    result.map_err(|m| problems.add(field, m)).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::error::ApiError;

    pub(crate) fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Invalid { fields } => fields.into_iter().map(|(f, _)| f).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }
}
