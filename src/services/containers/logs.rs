//! `GET /api/containers/{id}/logs?lines=N`: the last N lines (1..=1000, 100 by default) of a
//! container's standard output and error, as text lines in JSON. The answer is bounded in
//! bytes, and a service's output reaches the admin's browser cleaned: escape sequences and
//! other control characters (a terminal's colours, a cursor move, a title change) are dropped.

use std::time::Duration;

use axum::extract::State;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{resolve, unavailable};
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::services::driver::failed;
use crate::services::ServicesApp;

const DEFAULT_LINES: u32 = 100;
const MAX_LINES: u32 = 1000;
/// The most text one answer carries: the newest lines that fit.
const MAX_BYTES: usize = 256 * 1024;
/// The most read from the engine: N lines may be long; older bytes past this are dropped.
const READ_MAX: usize = 4 * MAX_BYTES;
const READ_WAIT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    lines: Option<u32>,
}

pub async fn logs(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    Path(reference): Path<String>,
    Query(query): Query<LogsQuery>,
) -> ApiResult<Json<Value>> {
    let lines = query.lines.unwrap_or(DEFAULT_LINES);
    if !(1..=MAX_LINES).contains(&lines) {
        return Err(ApiError::invalid(
            "lines",
            format!("must be 1 to {MAX_LINES}"),
        ));
    }
    let (docker, found) = resolve(&app, &reference).await?;
    let id = found.id.clone().unwrap_or_default();
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    let mut stream = docker.logs(&id, Some(options));
    let mut raw: Vec<u8> = Vec::new();
    let mut dropped = false;
    let read = async {
        while let Some(chunk) = stream.next().await {
            raw.extend_from_slice(&chunk.map_err(|e| unavailable(failed(e)))?.into_bytes());
            if raw.len() > READ_MAX {
                raw.drain(..raw.len() - READ_MAX);
                dropped = true;
            }
        }
        Ok::<_, ApiError>(())
    };
    // A log that takes longer to read is answered with what came.
    let outcome = tokio::time::timeout(READ_WAIT, read).await;
    match outcome {
        Ok(read) => read?,
        Err(_) => dropped = true,
    }
    let (text, truncated) = tail_lines(&raw, MAX_BYTES);
    Ok(Json(json!({
        "id": id,
        "lines": text,
        "truncated": truncated || dropped,
    })))
}

/// The newest lines of `raw` that fit in `max_bytes` (cleaned), oldest first, and whether any
/// were left out or cut.
fn tail_lines(raw: &[u8], max_bytes: usize) -> (Vec<String>, bool) {
    let text = String::from_utf8_lossy(raw);
    let mut lines: Vec<String> = Vec::new();
    let mut used = 0;
    let mut truncated = false;
    let mut all: Vec<&str> = text.split('\n').collect();
    if all.last() == Some(&"") {
        all.pop();
    }
    for line in all.into_iter().rev() {
        let mut clean = clean_line(line);
        if used + clean.len() > max_bytes {
            truncated = true;
            if !lines.is_empty() {
                break;
            }
            // One line longer than the whole bound: its start, cut at a character.
            let mut end = max_bytes;
            while !clean.is_char_boundary(end) {
                end -= 1;
            }
            clean.truncate(end);
        }
        used += clean.len();
        lines.push(clean);
    }
    lines.reverse();
    (lines, truncated)
}

/// A line without escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ESC \`, and
/// two-character `ESC x`) and without other control characters; tabs are kept.
fn clean_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    // Parameters and intermediates, up to the final byte (@ to ~).
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') | Some('P') | Some('_') | Some('^') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                Some(c) if (' '..='/').contains(&c) => {
                    // Intermediates (a character set choice), then the final character.
                    for c in chars.by_ref() {
                        if !(' '..='/').contains(&c) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_control_characters_are_dropped() {
        let cases = [
            ("\u{1b}[31mred\u{1b}[0m text", "red text"),
            ("\u{1b}[2J\u{1b}[1;1Hcleared", "cleared"),
            ("\u{1b}]0;title\u{7}after", "after"),
            ("\u{1b}]8;;http://x\u{1b}\\link", "link"),
            ("a\rb\u{8}c\u{0}d\u{9b}e\u{7f}", "abcde"),
            ("tab\tkept \u{1b}(Bx", "tab\tkept x"),
            ("ünïcode ✓", "ünïcode ✓"),
        ];
        for (raw, clean) in cases {
            assert_eq!(clean_line(raw), clean, "{raw:?}");
        }
    }

    #[test]
    fn the_tail_keeps_the_newest_lines_that_fit() {
        let raw = b"one\ntwo\r\nthree\n";
        assert_eq!(
            tail_lines(raw, 100),
            (vec!["one".into(), "two".into(), "three".into()], false)
        );
        assert_eq!(
            tail_lines(raw, 9),
            (vec!["two".into(), "three".into()], true)
        );
        let (long, cut) = tail_lines("é".repeat(10).as_bytes(), 5);
        assert_eq!((long, cut), (vec!["éé".to_string()], true));
        assert_eq!(tail_lines(b"", 10), (vec![], false));
    }
}
