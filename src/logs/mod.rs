//! picd's own logs: written to standard error (the journal, under systemd; JSON with
//! `log_format = "json"`), and the most recent lines kept in memory for /api/logs, with the
//! verbosity changeable at run time. Other crates' lines are clamped below trace whatever
//! the verbosity (see `allowed_whatever_the_filter`).

pub mod routes;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::filter::{filter_fn, LevelFilter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, Settings};

/// Lines kept for /api/logs.
const KEPT_LINES: usize = 5000;

#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    pub time: String,
    pub level: String,
    /// The part of picd that logged it (`dns`, `wireguard`, `http`, ...).
    pub service: String,
    pub message: String,
}

struct Logs {
    lines: Mutex<VecDeque<LogLine>>,
    filter: reload::Handle<EnvFilter, Registry>,
    current: Mutex<String>,
}

static LOGS: OnceLock<Logs> = OnceLock::new();

/// The service a log target belongs to: `picd::dns::server` -> `dns`; other crates by name.
fn service_of(target: &str) -> String {
    let mut parts = target.split("::");
    match (parts.next(), parts.next()) {
        (Some("picd"), Some(module)) => module.to_string(),
        (Some("tower_http"), _) => "http".into(),
        (Some(first), _) => first.to_string(),
        (None, _) => "picd".into(),
    }
}

struct Collect(String);

/// The fields the `log` bridge adds (`log.target`, `log.file`, ...): already in the line's
/// service, noise in its message.
fn is_bridge_field(field: &Field) -> bool {
    field.name().starts_with("log.")
}

impl Visit for Collect {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if is_bridge_field(field) {
            return;
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if is_bridge_field(field) {
            return;
        }
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

/// Keeps each event (that passed the filter) in the ring buffer.
struct Keep;

impl<S: Subscriber> Layer<S> for Keep {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let Some(logs) = LOGS.get() else { return };
        let mut collect = Collect(String::new());
        event.record(&mut collect);
        // A line from a crate that logs through `log` arrives with the bridge's metadata:
        // its own target (and so its service) is in the normalised metadata.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let line = LogLine {
            time: crate::time::now_rfc3339(),
            level: meta.level().to_string().to_lowercase(),
            service: service_of(meta.target()),
            message: collect.0,
        };
        let mut lines = logs.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() >= KEPT_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

/// Sets up logging for the process (once).
pub fn init(settings: &Settings) {
    let wanted = settings.log_level.clone();
    let filter = EnvFilter::try_new(&wanted).unwrap_or_else(|_| EnvFilter::new("info"));
    let hint = filter.max_level_hint();
    let (filter, handle) = reload::Layer::new(filter);
    let output = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let _ = LOGS.set(Logs {
        lines: Mutex::new(VecDeque::new()),
        filter: handle,
        current: Mutex::new(wanted),
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(filter_fn(allowed_whatever_the_filter))
        .with(output)
        .with(Keep)
        .try_init();
    follow_in_log_crate(hint);
}

/// Crates that log through `log` (defguard_wireguard_rs) are asked only up to `log`'s own
/// global maximum, which the bridge sets once at start: it follows each new filter, and
/// stays at debug at most, since no crate but picd may log at trace (picd uses `tracing`).
fn follow_in_log_crate(hint: Option<LevelFilter>) {
    let level = match hint.unwrap_or(LevelFilter::TRACE) {
        LevelFilter::OFF => log::LevelFilter::Off,
        LevelFilter::ERROR => log::LevelFilter::Error,
        LevelFilter::WARN => log::LevelFilter::Warn,
        LevelFilter::INFO => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    };
    log::set_max_level(level);
}

/// Whether a span or event is picd's own (`picd` and `picd::*`).
fn is_picd(target: &str) -> bool {
    target == "picd" || target.starts_with("picd::")
}

/// A second, fixed filter beside the changeable one: other crates never log at trace,
/// whatever the filter says (`trace`, `hyper=trace`, ...). Their trace lines carry raw
/// protocol data that picd cannot vet: defguard_wireguard_rs logs netlink replies (private
/// and preshared keys included), hyper and h2 log headers and frames (cookies, API tokens).
/// picd's own trace lines are written knowing the rule that no secret is ever logged.
/// Evaluated once per call site, so a clamped line costs nothing at run time.
fn allowed_whatever_the_filter(meta: &Metadata<'_>) -> bool {
    *meta.level() < Level::TRACE || is_picd(meta.target())
}

/// The newest `count` lines, optionally of one service and containing `text`, oldest first.
pub fn recent(count: usize, service: Option<&str>, text: Option<&str>) -> Vec<LogLine> {
    let Some(logs) = LOGS.get() else {
        return Vec::new();
    };
    let text = text.map(str::to_lowercase);
    let lines = logs.lines.lock().unwrap_or_else(|e| e.into_inner());
    let mut found: Vec<LogLine> = lines
        .iter()
        .rev()
        .filter(|l| service.is_none_or(|s| l.service == s))
        .filter(|l| {
            text.as_ref()
                .is_none_or(|t| l.message.to_lowercase().contains(t.as_str()))
        })
        .take(count)
        .cloned()
        .collect();
    found.reverse();
    found
}

/// The current filter, e.g. `info` or `info,picd::dns=debug`.
pub fn verbosity() -> String {
    LOGS.get()
        .map(|l| l.current.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .unwrap_or_default()
}

/// Replaces the filter; a filter that does not parse is refused and the old one kept.
pub fn set_verbosity(filter: &str) -> Result<(), String> {
    let logs = LOGS.get().ok_or("logging is not set up")?;
    let parsed = EnvFilter::try_new(filter).map_err(|e| e.to_string())?;
    let hint = parsed.max_level_hint();
    logs.filter.reload(parsed).map_err(|e| e.to_string())?;
    follow_in_log_crate(hint);
    *logs.current.lock().unwrap_or_else(|e| e.into_inner()) = filter.to_string();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_picd_logs_at_trace() {
        assert!(is_picd("picd"));
        assert!(is_picd("picd::wireguard::driver"));
        assert!(!is_picd("picdx"));
        assert!(!is_picd("defguard_wireguard_rs::netlink"));
        // Level order in tracing: TRACE is the "greatest", ERROR the least.
        assert!(Level::DEBUG < Level::TRACE && Level::ERROR < Level::TRACE);
    }
}
