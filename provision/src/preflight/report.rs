//! The result of [`super::evaluate`]: one row per check, a verdict, and a
//! table for a terminal (JSON through serde).

use std::fmt;

use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine as it is, or kubeseed will make it so (see [`Check::kubeseed`]).
    Pass,
    /// Works, but worth a look.
    Warn,
    /// kubeseed must not go on until a person fixes it.
    Fail,
}

impl Status {
    /// As the table shows it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// A short stable name (`swap`, `port 6443`, `/var/lib/etcd`...).
    pub name: String,
    /// The verdict.
    pub status: Status,
    /// What was observed.
    pub detail: String,
    /// What a person should do (an exact command where there is one); set
    /// on every Warn and Fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// What kubeseed will do about it itself (a sysctl it sets, a module it
    /// loads), when the host allows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeseed: Option<String>,
}

impl Check {
    pub(crate) fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
            kubeseed: None,
        }
    }

    pub(crate) fn warn(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Check {
            status: Status::Warn,
            fix: Some(fix.into()),
            ..Check::pass(name, detail)
        }
    }

    pub(crate) fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Check {
            status: Status::Fail,
            fix: Some(fix.into()),
            ..Check::pass(name, detail)
        }
    }

    /// The same check with what kubeseed does about it.
    pub(crate) fn kubeseed_does(mut self, what: impl Into<String>) -> Self {
        self.kubeseed = Some(what.into());
        self
    }
}

/// Every check of one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The host (`address:port`).
    pub host: String,
    /// Whether nothing failed (also in the JSON, for scripts).
    pub ok: bool,
    /// The checks, in a fixed order.
    pub checks: Vec<Check>,
}

/// The widest the detail column wraps to; fix commands are never wrapped
/// (a command broken over two lines would run as two when pasted).
const DETAIL_WIDTH: usize = 64;

impl Report {
    pub(crate) fn new(host: &str, checks: Vec<Check>) -> Self {
        Report {
            host: host.to_owned(),
            ok: !checks.iter().any(|c| c.status == Status::Fail),
            checks,
        }
    }

    /// No check failed.
    pub fn is_ok(&self) -> bool {
        self.ok
    }

    /// The failed checks.
    pub fn failures(&self) -> Vec<&Check> {
        self.with_status(Status::Fail)
    }

    /// The checks that warn.
    pub fn warnings(&self) -> Vec<&Check> {
        self.with_status(Status::Warn)
    }

    /// The checks with `status`.
    pub fn with_status(&self, status: Status) -> Vec<&Check> {
        self.checks.iter().filter(|c| c.status == status).collect()
    }

    /// A check by name.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// One line for logs and errors: `host: 2 failed (swap, port 6443), 1 warning`.
    pub fn summary(&self) -> String {
        let failed = self.failures();
        let warned = self.warnings().len();
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("1 {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        if failed.is_empty() {
            format!(
                "{}: preflight passed ({})",
                self.host,
                plural(warned, "warning")
            )
        } else {
            let names: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
            format!(
                "{}: preflight failed: {} ({}), {}",
                self.host,
                plural(failed.len(), "check"),
                names.join(", "),
                plural(warned, "warning")
            )
        }
    }

    /// The table: `check | result | detail / fix`, aligned, no colours.
    pub fn table(&self) -> String {
        let name_width = self
            .checks
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0)
            .max("check".len());
        let result_width = "result".len();
        let mut out = String::new();
        let mut row = |name: &str, result: &str, text: &str| {
            out.push_str(&format!(
                "{name:<name_width$} | {result:<result_width$} | {text}"
            ));
            // No trailing spaces on rows with an empty last column.
            while out.ends_with(' ') {
                out.pop();
            }
            out.push('\n');
        };
        row("check", "result", "detail / fix");
        let rule = format!(
            "{}-+-{}-+-{}\n",
            "-".repeat(name_width),
            "-".repeat(result_width),
            "-".repeat(DETAIL_WIDTH)
        );
        let mut body = String::new();
        for c in &self.checks {
            let mut lines = wrap(&c.detail, DETAIL_WIDTH);
            if let Some(k) = &c.kubeseed {
                lines.extend(wrap(&format!("kubeseed: {k}"), DETAIL_WIDTH));
            }
            if let Some(f) = &c.fix {
                lines.push(format!("fix: {f}"));
            }
            for (i, line) in lines.iter().enumerate() {
                let (name, result) = if i == 0 {
                    (c.name.as_str(), c.status.label())
                } else {
                    ("", "")
                };
                body.push_str(&format!(
                    "{name:<name_width$} | {result:<result_width$} | {line}"
                ));
                while body.ends_with(' ') {
                    body.pop();
                }
                body.push('\n');
            }
        }
        out.push_str(&rule);
        out.push_str(&body);
        out.push_str(&format!("{}\n", self.summary()));
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.table())
    }
}

/// Words of `text` in lines of at most `width` characters (a longer word
/// gets a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split_whitespace() {
            let len = line.chars().count();
            if len > 0 && len + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_words_whole() {
        assert_eq!(wrap("a bb ccc dddd", 6), vec!["a bb", "ccc", "dddd"]);
        assert_eq!(
            wrap("averyverylongword x", 4),
            vec!["averyverylongword", "x"]
        );
        assert_eq!(wrap("", 10), vec![""]);
    }

    #[test]
    fn table_aligns_columns_and_keeps_fixes_whole() {
        let r = Report::new(
            "10.0.0.1:22",
            vec![
                Check::pass("swap", "no swap"),
                Check::fail(
                    "port 6443",
                    "held by nginx (pid 42) on 0.0.0.0",
                    "stop nginx or move it off port 6443: systemctl disable --now nginx",
                ),
                Check::pass("ip_forward", "0, writable")
                    .kubeseed_does("sets net.ipv4.ip_forward=1"),
            ],
        );
        assert!(!r.is_ok());
        assert_eq!(r.failures().len(), 1);
        let t = r.table();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "check      | result | detail / fix");
        assert!(lines[1].starts_with("-----------+--------+---"));
        assert_eq!(lines[2], "swap       | pass   | no swap");
        assert_eq!(
            lines[3],
            "port 6443  | FAIL   | held by nginx (pid 42) on 0.0.0.0"
        );
        assert_eq!(
            lines[4],
            "           |        | fix: stop nginx or move it off port 6443: systemctl disable --now nginx"
        );
        assert_eq!(lines[5], "ip_forward | pass   | 0, writable");
        assert_eq!(
            lines[6],
            "           |        | kubeseed: sets net.ipv4.ip_forward=1"
        );
        assert_eq!(
            lines[7],
            "10.0.0.1:22: preflight failed: 1 check (port 6443), 0 warnings"
        );
        for l in &lines {
            assert!(!l.ends_with(' '), "{l:?}");
        }
    }

    #[test]
    fn json_shape() {
        let r = Report::new("h:22", vec![Check::warn("cpus", "1 CPU", "add a CPU")]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(v["checks"][0]["status"], "warn");
        assert_eq!(v["checks"][0]["fix"], "add a CPU");
        assert!(v["checks"][0].get("kubeseed").is_none());
        assert_eq!(r.summary(), "h:22: preflight passed (1 warning)");
    }
}
