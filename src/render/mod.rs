//! Renderers: they turn typed results (a probe [`Report`](crate::probe::report::Report), a list of
//! [`Explanation`](crate::explain::Explanation)s) into text for a person or JSON for a program. They only write to a
//! `Write`; they never decide anything.
//!
//! - [`human`]: the default, with marks, timings, the referral chain and a verdict sentence; colour when enabled;
//! - [`json`]: one JSON document (the contract in `docs/json.md`);
//! - [`check`]: a check run's summary table and JSON document;
//! - [`nagios`]: the monitoring-plugins status line with perfdata;
//! - [`openmetrics`]: OpenMetrics text for Prometheus;
//! - [`exposition`]: the exporter's metrics, Prometheus text 0.0.4 or OpenMetrics 1.0.0;
//! - [`exporter_page`]: the exporter's HTML page and one probe's debug text;
//! - [`junit`]: JUnit XML for CI;
//! - [`graph`]: the referral topology as DOT, SVG or HTML.
//!
//! Colour is decided once at the edge ([`ColorChoice::resolve`]) and applied with `colored`'s global switch.

pub mod check;
pub mod exporter_page;
pub mod exposition;
pub mod graph;
pub mod human;
pub mod json;
pub mod junit;
pub mod nagios;
pub mod openmetrics;

use std::io::IsTerminal;

/// `--color auto|always|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// Whether to colour, honouring NO_COLOR (any non-empty value) and whether stdout is a terminal.
    pub fn resolve(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        }
    }

    /// Resolves and applies the choice for everything rendered afterwards.
    pub fn apply(self) -> bool {
        let on = self.resolve();
        colored::control::set_override(on);
        on
    }
}

/// The output format, chosen once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Text for a person.
    #[default]
    Human,
    /// One JSON document.
    Json,
}
