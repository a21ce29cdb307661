//! The benchmark report: one table of the figures the benchmarks wrote under
//! `target/bench/`, each beside the reference it was compared with in the
//! same run and the ratio between them.
//!
//! The benchmarks measure; this module only reads their JSON. A figure whose
//! file is missing is reported as not measured, with the command that
//! measures it, rather than dropped: a report never looks more complete than
//! it is.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

/// One measure, its reference from the same run, and their ratio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// What was measured.
    pub measure: String,
    /// The figure, in `unit`; `None` when its benchmark has not run.
    pub value: Option<f64>,
    /// Unit of `value` and `reference_value`.
    pub unit: &'static str,
    /// What it is compared with.
    pub reference: String,
    /// The reference's figure from the same run, in `unit` unless the
    /// reference is a bare target.
    pub reference_value: Option<f64>,
    /// `value / reference_value`.
    pub ratio: Option<f64>,
    /// The goal, in words (`≤ 1.3×`), when the issue set one.
    pub target: String,
    /// The JSON file the figure came from (under the bench directory).
    pub source: &'static str,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Rows in a fixed order.
    pub rows: Vec<Row>,
    /// Files that were missing, each with the command that writes it.
    pub missing: Vec<(String, String)>,
}

/// Where each figure comes from and what writes it.
const SOURCES: [(&str, &str); 5] = [
    ("seed.json", "bash e2e/bench.sh (seed_bench)"),
    (
        "control_plane.json",
        "bash e2e/bench.sh (control_plane_bench)",
    ),
    ("workers.json", "bash e2e/bench.sh (workers_bench)"),
    (
        "load_balancer.json",
        "cargo test -p kubeseed-e2e --test control_plane -- --nocapture",
    ),
    (
        "transfer.json",
        "cargo bench -p kubeseed-provision --bench transfer",
    ),
];

/// Reads every benchmark file under `dir` and builds the report.
pub fn collect(dir: &Path) -> Report {
    let mut missing = Vec::new();
    let mut load = |name: &str| -> Option<Value> {
        let path = dir.join(name);
        let parsed = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        if parsed.is_none()
            && let Some((_, command)) = SOURCES.iter().find(|(file, _)| *file == name)
        {
            missing.push((path.display().to_string(), (*command).to_owned()));
        }
        parsed
    };
    let seed = load("seed.json");
    let control_plane = load("control_plane.json");
    let workers = load("workers.json");
    let balancer = load("load_balancer.json");
    let transfer = load("transfer.json");
    let mut rows = Vec::new();
    rows.extend(seed_rows(seed.as_ref()));
    rows.extend(control_plane_rows(control_plane.as_ref()));
    rows.extend(worker_rows(workers.as_ref()));
    rows.extend(balancer_rows(balancer.as_ref()));
    rows.extend(transfer_rows(transfer.as_ref()));
    Report { rows, missing }
}

fn num(doc: Option<&Value>, key: &str) -> Option<f64> {
    doc.and_then(|d| d.pointer(key)).and_then(Value::as_f64)
}

/// A row comparing `value` with `reference_value`.
fn row(
    measure: &str,
    (value, unit): (Option<f64>, &'static str),
    (reference, reference_value): (&str, Option<f64>),
    target: &str,
    source: &'static str,
) -> Row {
    let ratio = match (value, reference_value) {
        (Some(v), Some(r)) if r > 0.0 => Some(v / r),
        _ => None,
    };
    Row {
        measure: measure.to_owned(),
        value,
        unit,
        reference: reference.to_owned(),
        reference_value,
        ratio,
        target: target.to_owned(),
        source,
    }
}

fn seed_rows(seed: Option<&Value>) -> Vec<Row> {
    let kubeadm = num(seed, "/kubeadm_init_seconds");
    vec![
        // `kubeadm init` ends once its Node is registered and its addons
        // applied: the seed's matching point, not its end (the operator's
        // install, which kubeadm has no part of).
        row(
            "seed: to Node registered (binaries travel)",
            (num(seed, "/seed_cold_to_registered_seconds"), "s"),
            ("`kubeadm init` on an identical host", kubeadm),
            "≤ 0.5×",
            "seed.json",
        ),
        row(
            "seed: `bootstrap seed` to the operator Ready (binaries travel)",
            (num(seed, "/seed_cold_seconds"), "s"),
            ("", None),
            "",
            "seed.json",
        ),
        row(
            "seed: to Node registered (bundle on the host)",
            (num(seed, "/seed_warm_to_registered_seconds"), "s"),
            (
                "the same units started by hand",
                num(seed, "/by_hand_to_registered_seconds"),
            ),
            "",
            "seed.json",
        ),
    ]
}

fn control_plane_rows(cp: Option<&Value>) -> Vec<Row> {
    let idle = num(cp, "/operator_rss_idle_mib");
    vec![
        row(
            "master join: `kubectl apply` to Ready",
            (num(cp, "/apply_to_ready_seconds"), "s"),
            (
                "etcd member add + start, apiserver start, by hand",
                num(cp, "/by_hand_total_seconds"),
            ),
            "≤ 1.5×",
            "control_plane.json",
        ),
        row(
            "operator memory idle (RSS)",
            (idle, "MiB"),
            ("", None),
            "≤ 20 MiB",
            "control_plane.json",
        ),
        row(
            "operator memory during joins (peak RSS)",
            (num(cp, "/operator_rss_peak_during_join_mib"), "MiB"),
            ("the same operator idle", idle),
            "",
            "control_plane.json",
        ),
        row(
            "operator memory with 100 members (RSS)",
            (num(cp, "/operator_rss_with_100_members_mib"), "MiB"),
            ("the same operator idle", idle),
            "≤ 40 MiB",
            "control_plane.json",
        ),
    ]
}

fn worker_rows(workers: Option<&Value>) -> Vec<Row> {
    let one = num(workers, "/one_worker_seconds");
    vec![
        row(
            "worker join: one, `kubectl apply` to Ready",
            (one, "s"),
            ("", None),
            "",
            "workers.json",
        ),
        row(
            "worker join: four at once, to all Ready",
            (num(workers, "/four_workers_seconds"), "s"),
            ("one worker", one),
            "≤ 1.3×",
            "workers.json",
        ),
    ]
}

fn balancer_rows(lb: Option<&Value>) -> Vec<Row> {
    let master_down = num(lb, "/master_down_interval_ms");
    let Some(failovers) = lb
        .and_then(|l| l.get("failovers"))
        .and_then(Value::as_array)
    else {
        return vec![row(
            "VIP failover and failed requests",
            (None, "ms"),
            ("keepalived's master-down interval", None),
            "",
            "load_balancer.json",
        )];
    };
    let mut rows = Vec::new();
    for f in failovers {
        let name = format!(
            "{}, {}",
            f.get("implementation")
                .and_then(Value::as_str)
                .unwrap_or("?"),
            f.get("event").and_then(Value::as_str).unwrap_or("?")
        );
        if let Some(took) = num(Some(f), "/takeover_ms") {
            rows.push(row(
                &format!("VIP failover ({name}): new holder MASTER after"),
                (Some(took), "ms"),
                ("keepalived's master-down interval", master_down),
                "",
                "load_balancer.json",
            ));
            // What a client saw: from its first failed request to its next
            // good one.
            rows.push(row(
                &format!("API downtime through the VIP ({name})"),
                (num(Some(f), "/outage_ms"), "ms"),
                ("keepalived's master-down interval", master_down),
                "",
                "load_balancer.json",
            ));
        }
        rows.push(row(
            &format!("failed requests ({name}), one every 100 ms through the VIP"),
            (num(Some(f), "/failed_requests"), "requests"),
            ("", None),
            "",
            "load_balancer.json",
        ));
    }
    rows
}

fn transfer_rows(transfer: Option<&Value>) -> Vec<Row> {
    let speed = |list: &str, name: &str| -> Option<f64> {
        transfer?
            .get(list)?
            .as_array()?
            .iter()
            .find(|m| m.get("name").and_then(Value::as_str) == Some(name))?
            .get("mb_per_s")?
            .as_f64()
    };
    let best = |list: &str, prefix: &str| -> Option<f64> {
        transfer?
            .get(list)?
            .as_array()?
            .iter()
            .filter(|m| {
                m.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .filter_map(|m| m.get("mb_per_s").and_then(Value::as_f64))
            .reduce(f64::max)
    };
    vec![
        row(
            "SSH upload, kubeseed (best method)",
            (best("methods", "kubeseed"), "MB/s"),
            ("OpenSSH scp", speed("methods", "openssh scp")),
            "",
            "transfer.json",
        ),
        row(
            "SSH download, kubeseed (best method)",
            (best("downloads", "kubeseed"), "MB/s"),
            ("OpenSSH scp", speed("downloads", "openssh scp")),
            "≥ 0.9×",
            "transfer.json",
        ),
    ]
}

impl Report {
    /// The report as a Markdown table, then what was not measured.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let with_unit = |v: Option<f64>, unit: &str| match v {
            None => "not measured".to_owned(),
            // Counts are whole numbers.
            Some(v) if unit == "requests" => format!("{v:.0} {unit}"),
            Some(v) => format!("{v:.1} {unit}"),
        };
        let _ = writeln!(
            out,
            "| measure | value | reference (same run) | reference value | ratio | target |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for r in &self.rows {
            let reference_value = if r.reference.is_empty() {
                String::new()
            } else {
                with_unit(r.reference_value, r.unit)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                r.measure,
                with_unit(r.value, r.unit),
                r.reference,
                reference_value,
                r.ratio.map(|v| format!("{v:.2}×")).unwrap_or_default(),
                r.target,
            );
        }
        if !self.missing.is_empty() {
            let _ = writeln!(out, "\nNot measured yet (no file):");
            for (path, command) in &self.missing {
                let _ = writeln!(out, "- {path}: `{command}`");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, doc: Value) {
        std::fs::write(dir.join(name), doc.to_string()).unwrap();
    }

    #[test]
    fn an_empty_directory_reports_every_figure_as_not_measured() {
        let dir = tempfile::tempdir().unwrap();
        let report = collect(dir.path());
        assert_eq!(report.missing.len(), SOURCES.len());
        assert!(report.rows.iter().all(|r| r.value.is_none()));
        let md = report.markdown();
        assert!(md.contains("not measured"), "{md}");
        assert!(md.contains("bash e2e/bench.sh (workers_bench)"), "{md}");
        assert!(md.contains("| not measured |"), "{md}");
    }

    #[test]
    fn figures_sit_beside_their_reference_and_ratio() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "workers.json",
            serde_json::json!({"one_worker_seconds": 10.0, "four_workers_seconds": 12.5}),
        );
        write(
            dir.path(),
            "load_balancer.json",
            serde_json::json!({"master_down_interval_ms": 654.0, "failovers": [
                {"implementation": "HAProxy", "event": "PowerOff", "takeover_ms": 981.0, "failed_requests": 3.0},
                {"implementation": "HAProxy", "event": "master1 powered off", "failed_requests": 0.0},
            ]}),
        );
        write(
            dir.path(),
            "transfer.json",
            serde_json::json!({
                "methods": [
                    {"name": "kubeseed exec-stream", "mb_per_s": 300.0},
                    {"name": "kubeseed sftp", "mb_per_s": 200.0},
                    {"name": "openssh scp", "mb_per_s": 250.0},
                ],
                "downloads": [],
            }),
        );
        let report = collect(dir.path());
        let four = report
            .rows
            .iter()
            .find(|r| r.measure.starts_with("worker join: four"))
            .unwrap();
        assert_eq!(four.ratio, Some(1.25));
        let takeover = report
            .rows
            .iter()
            .find(|r| r.measure.contains("PowerOff): new holder"))
            .unwrap();
        assert_eq!(takeover.ratio, Some(981.0 / 654.0));
        assert_eq!(
            report
                .rows
                .iter()
                .filter(|r| r.measure.starts_with("failed requests"))
                .count(),
            2
        );
        let upload = report
            .rows
            .iter()
            .find(|r| r.measure.starts_with("SSH upload"))
            .unwrap();
        assert_eq!((upload.value, upload.ratio), (Some(300.0), Some(1.2)));
        let download = report
            .rows
            .iter()
            .find(|r| r.measure.starts_with("SSH download"))
            .unwrap();
        assert_eq!(download.value, None, "no downloads measured");
        assert_eq!(report.missing.len(), 2, "{:?}", report.missing);
        let md = report.markdown();
        assert!(md.contains("| 3 requests |"), "{md}");
        assert!(md.contains("| 1.25× |"), "{md}");
    }
}
