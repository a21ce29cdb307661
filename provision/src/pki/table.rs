//! A plain-text expiry table, like `kubeadm certs check-expiration`, for
//! `bootstrap certs` and logs.

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::plan::CertificateRecord;
use super::validity::rfc3339;

/// One row per certificate: host, path, subject, SANs, expiry and time left
/// (or `EXPIRED`). Columns are padded to their widest cell.
pub fn expiry_table(records: &[CertificateRecord], now: OffsetDateTime) -> String {
    let header = [
        "HOST",
        "CERTIFICATE",
        "SUBJECT",
        "EXPIRES",
        "RESIDUAL",
        "SANS",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 6]> = records
        .iter()
        .map(|r| {
            let left = r.info.remaining(now);
            let residual = if left.is_negative() {
                "EXPIRED".to_owned()
            } else if left.whole_days() >= 1 {
                format!("{}d", left.whole_days())
            } else {
                format!("{}h", left.whole_hours())
            };
            [
                r.host.clone(),
                r.path.clone(),
                r.info.subject.clone(),
                rfc3339(r.info.not_after),
                residual,
                r.info.sans.join(","),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::CertificateInfo;
    use time::Duration;

    fn record(host: &str, path: &str, not_after: OffsetDateTime) -> CertificateRecord {
        CertificateRecord {
            host: host.into(),
            path: path.into(),
            info: CertificateInfo {
                subject: "CN=kube-apiserver".into(),
                common_name: "kube-apiserver".into(),
                organizations: vec![],
                issuer: "CN=kubernetes".into(),
                serial: "01".into(),
                sans: vec!["DNS:kubernetes".into(), "IP:10.96.0.1".into()],
                not_before: not_after - Duration::days(365),
                not_after,
                is_ca: false,
                key_algorithm: "ECDSA-P256".into(),
                extended_key_usages: vec!["serverAuth".into()],
            },
        }
    }

    #[test]
    fn shows_residual_time_and_expired() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000_000).unwrap();
        let table = expiry_table(
            &[
                record(
                    "master-1",
                    "/etc/kubernetes/pki/apiserver.crt",
                    now + Duration::days(364),
                ),
                record(
                    "master-2",
                    "/etc/kubernetes/pki/apiserver.crt",
                    now - Duration::hours(1),
                ),
                record(
                    "master-3",
                    "/etc/kubernetes/pki/apiserver.crt",
                    now + Duration::hours(5),
                ),
            ],
            now,
        );
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("HOST") && lines[0].ends_with("SANS"),
            "{table}"
        );
        assert!(
            lines[1].contains("364d") && lines[1].ends_with("DNS:kubernetes,IP:10.96.0.1"),
            "{table}"
        );
        assert!(lines[2].contains("EXPIRED"), "{table}");
        assert!(lines[3].contains(" 5h "), "{table}");
        // Columns line up: every row has SUBJECT at the same offset.
        let col = lines[0].find("SUBJECT").unwrap();
        assert!(
            lines[1..].iter().all(|l| l[col..].starts_with("CN=")),
            "{table}"
        );
    }
}
