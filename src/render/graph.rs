//! The referral topology of a check run (`imapref check --graph FILE`): servers are nodes, and each account's path
//! from the server it was given to the server that holds its mailbox is a chain of edges.
//!
//! - login referrals are blue edges labelled `login`, mailbox referrals green edges labelled `mailbox`;
//! - a referral that failed or was refused (a loop, too many hops, the policy, a TLS downgrade, a closed port) is
//!   red, and so is a server where a check stopped;
//! - a dead replica (an alternative that could not be reached while a later one was) is a dashed grey edge;
//! - a referral given and not followed, as the check expected (`follow = "never"`), is orange;
//! - the server where a mailbox was opened is filled green.
//!
//! [`Topology::from_outcomes`] builds the model; [`dot`] writes Graphviz DOT, [`svg`] lays it out and draws it with the
//! layout-rs crate (no external program), and [`html`] wraps that SVG in a self-contained page (no network).

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::check::Outcome;
use crate::probe::report::{HopReason, Report};
use crate::probe::target::authority;

/// A referral's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    /// RFC 2221: on LOGIN, or in the greeting.
    Login,
    /// RFC 2193: on SELECT or EXAMINE.
    Mailbox,
}

/// What became of a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeState {
    /// Followed, and the next server answered.
    Followed,
    /// Followed or refused, and the check stopped there (red).
    Failed,
    /// A replica that could not be reached, while another one was tried (dashed).
    Dead,
    /// Given but not followed, as the check expected (`follow = "never"`, `expect = "referred"`): orange.
    NotFollowed,
}

/// One server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `host:port`.
    pub server: String,
    /// A check stopped here, or could not reach it.
    pub failed: bool,
    /// A mailbox was opened here.
    pub home: bool,
    /// A check started here.
    pub start: bool,
}

/// One referral, with the checks that took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// From `host:port`.
    pub from: String,
    /// To `host:port`.
    pub to: String,
    /// Login or mailbox referral.
    pub kind: EdgeKind,
    /// Followed, failed or dead.
    pub state: EdgeState,
    /// The checks' names.
    pub checks: Vec<String>,
    /// Why it failed (a diagnosis id), when it did.
    pub why: Option<String>,
}

/// The servers and referrals of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    /// Servers, in the order first seen.
    pub nodes: Vec<Node>,
    /// Referrals, in the order first seen.
    pub edges: Vec<Edge>,
}

impl Topology {
    fn node(&mut self, server: &str) -> &mut Node {
        let at = match self.nodes.iter().position(|n| n.server == server) {
            Some(i) => i,
            None => {
                self.nodes.push(Node {
                    server: server.to_string(),
                    failed: false,
                    home: false,
                    start: false,
                });
                self.nodes.len() - 1
            }
        };
        &mut self.nodes[at]
    }

    fn edge(&mut self, edge: Edge) {
        if let Some(e) = self.edges.iter_mut().find(|e| {
            e.from == edge.from && e.to == edge.to && e.kind == edge.kind && e.state == edge.state
        }) {
            for c in edge.checks {
                if !e.checks.contains(&c) {
                    e.checks.push(c);
                }
            }
            if e.why.is_none() {
                e.why = edge.why;
            }
        } else {
            self.edges.push(edge);
        }
    }

    /// The topology of every check that ran (timeouts and bad checks have no path to draw).
    pub fn from_outcomes(outcomes: &[Outcome]) -> Topology {
        let mut t = Topology::default();
        for o in outcomes {
            if let Some(report) = &o.report {
                t.add(&o.name, report, o.passed());
            }
        }
        t
    }

    /// Adds one probe's path; `passed` says whether its check passed (an unfollowed referral is then no failure).
    pub fn add(&mut self, check: &str, report: &Report, passed: bool) {
        let Some(first) = report.hops.first() else {
            return;
        };
        let reached = report.verdict.mailbox_reached;
        let stop_id = report
            .diagnoses
            .iter()
            .rev()
            .find(|d| d.severity >= crate::probe::report::Severity::Critical)
            .map(|d| d.id.as_str());
        self.node(&first.server).start = true;
        let last = report.hops.len() - 1;
        let mut prev = first.server.clone();
        for (i, hop) in report.hops.iter().enumerate().skip(1) {
            let kind = match hop.reason {
                HopReason::MailboxReferral { .. } => EdgeKind::Mailbox,
                _ => EdgeKind::Login,
            };
            let dead = hop.error.is_some() && i != last;
            let failed = i == last && !reached && hop.error.is_some();
            self.node(&hop.server);
            if failed || dead {
                self.node(&hop.server).failed |= failed || (dead && hop.error.is_some());
            }
            self.edge(Edge {
                from: prev.clone(),
                to: hop.server.clone(),
                kind,
                state: if dead {
                    EdgeState::Dead
                } else if failed {
                    EdgeState::Failed
                } else {
                    EdgeState::Followed
                },
                checks: vec![check.to_string()],
                why: if failed { stop_id.clone() } else { None },
            });
            if !dead {
                prev = hop.server.clone();
            }
        }
        let end = &report.hops[last];
        if reached {
            if let Some(at) = &report.verdict.reached_at {
                self.node(at).home = true;
            }
            return;
        }
        // The check stopped at the last hop: a referral it gave and that was not followed is drawn red.
        let pending = [
            (end.login.as_ref(), EdgeKind::Login),
            (end.select.as_ref(), EdgeKind::Mailbox),
        ];
        let mut drew = false;
        for (command, kind) in pending {
            let Some(referral) = command.and_then(|c| c.referral.as_ref()) else {
                continue;
            };
            for target in &referral.targets {
                let Some(host) = &target.host else { continue };
                let to = authority(host, target.port.unwrap_or(143));
                self.node(&to);
                self.edge(Edge {
                    from: end.server.clone(),
                    to,
                    kind,
                    state: if passed {
                        EdgeState::NotFollowed
                    } else {
                        EdgeState::Failed
                    },
                    checks: vec![check.to_string()],
                    why: if passed { None } else { stop_id.clone() },
                });
                drew = true;
            }
        }
        if !passed && (!drew || end.error.is_some()) {
            self.node(&end.server).failed = true;
        }
    }
}

/// A DOT string literal.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn edge_label(e: &Edge) -> String {
    let kind = match e.kind {
        EdgeKind::Login => "login",
        EdgeKind::Mailbox => "mailbox",
    };
    let mut label = format!("{kind}: {}", e.checks.join(", "));
    match e.state {
        EdgeState::Dead => label.push_str(" (dead replica)"),
        EdgeState::NotFollowed => label.push_str(" (not followed)"),
        EdgeState::Followed | EdgeState::Failed => {}
    }
    if let Some(why) = &e.why {
        label.push_str(&format!(" [{why}]"));
    }
    label
}

fn edge_colour(e: &Edge) -> &'static str {
    match (e.state, e.kind) {
        (EdgeState::Failed, _) => "red",
        (EdgeState::Dead, _) => "gray",
        (EdgeState::NotFollowed, _) => "orange",
        (EdgeState::Followed, EdgeKind::Login) => "blue",
        (EdgeState::Followed, EdgeKind::Mailbox) => "green",
    }
}

/// Writes the topology as Graphviz DOT. `layout_safe` leaves out attributes and self-loops that layout-rs cannot draw.
fn dot_text(t: &Topology, layout_safe: bool) -> String {
    let ids: BTreeMap<&str, String> = t
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.server.as_str(), format!("n{i}")))
        .collect();
    let mut s = String::from("digraph imapref {\n  rankdir=LR;\n");
    for (i, n) in t.nodes.iter().enumerate() {
        let mut label = n.server.clone();
        if n.home {
            label.push_str(" (mailbox)");
        }
        let (colour, fill) = if n.failed {
            ("red", "#ffd6d6")
        } else if n.home {
            ("black", "#d6f5d6")
        } else {
            ("black", "#ffffff")
        };
        s.push_str(&format!(
            "  n{i} [shape=box, label={}, color={colour}, style=filled, fillcolor={}];\n",
            quote(&label),
            quote(fill)
        ));
    }
    for e in &t.edges {
        let (Some(from), Some(to)) = (ids.get(e.from.as_str()), ids.get(e.to.as_str())) else {
            continue;
        };
        if layout_safe && from == to {
            continue;
        }
        let style = if e.state == EdgeState::Dead {
            ", style=dashed"
        } else {
            ""
        };
        s.push_str(&format!(
            "  {from} -> {to} [label={}, color={}{style}];\n",
            quote(&edge_label(e)),
            edge_colour(e)
        ));
    }
    s.push_str("}\n");
    s
}

/// Writes Graphviz DOT.
pub fn dot(t: &Topology, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(dot_text(t, false).as_bytes())
}

/// Lays the topology out and draws it as SVG with layout-rs.
pub fn svg_text(t: &Topology) -> io::Result<String> {
    if t.nodes.is_empty() {
        return Ok(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="300" height="40"><text x="10" y="25">no servers were reached</text></svg>"#
                .to_string(),
        );
    }
    let text = dot_text(t, true);
    let drawn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut parser = layout::gv::DotParser::new(&text);
        let graph = parser.process()?;
        let mut builder = layout::gv::GraphBuilder::new();
        builder.visit_graph(&graph);
        let mut visual = builder.get();
        let mut writer = layout::backends::svg::SVGWriter::new();
        visual.do_it(false, false, false, &mut writer);
        Ok::<String, String>(writer.finalize())
    }));
    match drawn {
        Ok(Ok(svg)) => Ok(svg),
        Ok(Err(why)) => Err(io::Error::other(format!("cannot lay out the graph: {why}"))),
        Err(_) => Err(io::Error::other(
            "cannot lay out the graph (layout-rs failed)",
        )),
    }
}

/// Writes the SVG.
pub fn svg(t: &Topology, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(svg_text(t)?.as_bytes())
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes a self-contained HTML page: the SVG inline, a legend and the list of referrals; nothing is fetched.
pub fn html(t: &Topology, out: &mut dyn Write) -> io::Result<()> {
    let svg = svg_text(t)?;
    let svg = match svg.find("<svg") {
        Some(at) => &svg[at..],
        None => svg.as_str(),
    };
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>imapref referral topology</title>\n\
         <style>body{{font-family:sans-serif;margin:1em}} .legend span{{margin-right:1.5em}} \
         table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}</style>\n\
         </head>\n<body>\n<h1>imapref referral topology</h1>\n<p class=\"legend\">\
         <span style=\"color:blue\">&#8594; login referral</span>\
         <span style=\"color:green\">&#8594; mailbox referral</span>\
         <span style=\"color:red\">&#8594; failed or refused</span>\
         <span style=\"color:gray\">&#8674; dead replica</span>\
         <span style=\"color:orange\">&#8594; not followed (as expected)</span>\
         <span style=\"background:#d6f5d6\">mailbox opened</span></p>"
    )?;
    writeln!(out, "<div class=\"graph\">\n{svg}\n</div>")?;
    writeln!(
        out,
        "<table>\n<tr><th>from</th><th>to</th><th>referral</th><th>state</th><th>checks</th></tr>"
    )?;
    for e in &t.edges {
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(&e.from),
            html_escape(&e.to),
            match e.kind {
                EdgeKind::Login => "login",
                EdgeKind::Mailbox => "mailbox",
            },
            match e.state {
                EdgeState::Followed => "followed".to_string(),
                EdgeState::Dead => "dead replica".to_string(),
                EdgeState::NotFollowed => "not followed".to_string(),
                EdgeState::Failed => format!("failed {}", e.why.clone().unwrap_or_default()),
            },
            html_escape(&e.checks.join(", "))
        )?;
    }
    writeln!(out, "</table>\n</body>\n</html>")
}

/// The graph formats, chosen by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// `.dot` / `.gv`.
    Dot,
    /// `.svg`.
    Svg,
    /// `.html` / `.htm`.
    Html,
}

impl GraphFormat {
    /// The format for a file name, or `None` for another extension.
    pub fn from_path(path: &std::path::Path) -> Option<GraphFormat> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("dot" | "gv") => Some(GraphFormat::Dot),
            Some("svg") => Some(GraphFormat::Svg),
            Some("html" | "htm") => Some(GraphFormat::Html),
            _ => None,
        }
    }

    /// Writes the topology in this format.
    pub fn write(self, t: &Topology, out: &mut dyn Write) -> io::Result<()> {
        match self {
            GraphFormat::Dot => dot(t, out),
            GraphFormat::Svg => svg(t, out),
            GraphFormat::Html => html(t, out),
        }
    }
}
