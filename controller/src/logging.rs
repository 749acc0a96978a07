//! The daemon's log: its format (`node.log_format`) and level
//! (`node.log_level`, else `RUST_LOG`, else `info`) chosen at start
//! and changed in place by a reload, through `tracing-subscriber`'s reload
//! layers. It only configures the log; it never writes anything else.

use std::io::IsTerminal;

use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use crate::settings::LogFormat;

type Filtered = Layered<reload::Layer<EnvFilter, Registry>, Registry>;
type FormatLayer = Box<dyn Layer<Filtered> + Send + Sync>;

/// Changes the running log's level and format.
pub struct LogControl {
    filter: reload::Handle<EnvFilter, Registry>,
    format: reload::Handle<FormatLayer, Filtered>,
}

/// `level` (the file's), else `RUST_LOG` when it is set and valid, else
/// `info`.
fn filter(level: Option<&str>) -> EnvFilter {
    level
        .and_then(|l| EnvFilter::try_new(l).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"))
}

fn format_layer(format: LogFormat) -> FormatLayer {
    let layer =
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => layer.json().boxed(),
        LogFormat::Human => layer.boxed(),
    }
}

/// Installs the process's log; once per process (a second call leaves the
/// first log in place and returns a handle that changes nothing visible).
pub fn init(format: LogFormat, level: Option<&str>) -> LogControl {
    let (filter_layer, filter) = reload::Layer::new(self::filter(level));
    let (format_layer, format) = reload::Layer::new(format_layer(format));
    let _ = tracing_subscriber::registry().with(filter_layer).with(format_layer).try_init();
    LogControl { filter, format }
}

impl LogControl {
    /// Applies a reloaded file's format and level.
    pub fn apply(&self, format: LogFormat, level: Option<&str>) -> Result<(), String> {
        self.filter.reload(filter(level)).map_err(|e| format!("log level: {e}"))?;
        self.format.reload(format_layer(format)).map_err(|e| format!("log format: {e}"))
    }
}
