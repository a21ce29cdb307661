//! Prometheus metrics the operator exports on `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::Error;

/// Labels of a per-kind series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The kind reconciled, such as `ControlPlaneMember`.
    pub kind: String,
}

/// Labels of a failed reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The kind reconciled.
    pub kind: String,
    /// [`Error::metric_label`] of the failure.
    pub error: String,
}

/// Every metric the operator updates, and the registry that encodes them.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    reconciles: Family<KindLabels, Counter>,
    failures: Family<ErrorLabels, Counter>,
    duration: Family<KindLabels, Histogram>,
    /// 1 while this process holds the leader Lease.
    pub leader: Gauge,
    /// Leaderships this process acquired since it started.
    pub leader_acquisitions: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates the metrics and registers them under the `kubeseed` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kubeseed");
        let reconciles = Family::<KindLabels, Counter>::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        // Reconciles of the not-yet-implemented kinds take milliseconds; SSH
        // provisioning takes minutes: 5 ms .. ~5.5 min.
        let duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 4.0, 9))
        });
        let leader = Gauge::default();
        let leader_acquisitions = Counter::default();
        registry.register(
            "reconcile",
            "Reconciles started, per kind",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, per kind and error kind",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles took, per kind",
            duration.clone(),
        );
        registry.register(
            "leader",
            "1 while this process holds the leader Lease",
            leader.clone(),
        );
        registry.register(
            "leader_acquisitions",
            "Times this process became the leader",
            leader_acquisitions.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            reconciles,
            failures,
            duration,
            leader,
            leader_acquisitions,
        }
    }

    /// Counts a reconcile of `kind` and returns a guard that records its
    /// duration when dropped.
    pub fn reconcile_started(&self, kind: &str) -> ReconcileTimer {
        let labels = KindLabels { kind: kind.into() };
        self.reconciles.get_or_create(&labels).inc();
        ReconcileTimer {
            start: Instant::now(),
            histogram: self.duration.get_or_create(&labels).clone(),
        }
    }

    /// Counts a failed reconcile of `kind`.
    pub fn reconcile_failed(&self, kind: &str, error: &Error) {
        self.failures
            .get_or_create(&ErrorLabels {
                kind: kind.into(),
                error: error.metric_label().into(),
            })
            .inc();
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Records a reconcile's duration when dropped, so early returns count too.
#[derive(Debug)]
pub struct ReconcileTimer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_with_kind_and_error_labels() -> Result<(), std::fmt::Error> {
        let m = Metrics::new();
        drop(m.reconcile_started("EtcdMember"));
        m.reconcile_failed("EtcdMember", &Error::MissingName);
        m.leader.set(1);
        let text = m.encode()?;
        assert!(text.contains("kubeseed_reconcile_total{kind=\"EtcdMember\"} 1"));
        assert!(text.contains(
            "kubeseed_reconcile_errors_total{kind=\"EtcdMember\",error=\"invalid_object\"} 1"
        ));
        assert!(text.contains("kubeseed_reconcile_duration_seconds_count{kind=\"EtcdMember\"} 1"));
        assert!(text.contains("kubeseed_leader 1"));
        Ok(())
    }
}
