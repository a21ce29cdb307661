//! How long certificates live.

use time::{Duration, OffsetDateTime};

use super::error::{PkiError, Result};

/// Lifetimes of generated certificates.
///
/// Defaults follow kubeadm: CAs ten years, leaves one year, and every
/// certificate starts a few minutes in the past so that a host whose clock is
/// slightly behind the one that signed still accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Lifetime of a CA certificate.
    pub ca: Duration,
    /// Lifetime of a leaf certificate. A leaf never outlives its CA: the end
    /// is capped at the CA's notAfter.
    pub leaf: Duration,
    /// How far notBefore is set before the moment of signing.
    pub backdate: Duration,
}

impl Default for Validity {
    fn default() -> Self {
        Self {
            ca: Duration::days(3650),
            leaf: Duration::days(365),
            backdate: Duration::minutes(5),
        }
    }
}

impl Validity {
    /// Checks that every period is positive and the backdate is modest.
    pub fn check(&self) -> Result<()> {
        if self.ca <= Duration::ZERO || self.leaf <= Duration::ZERO {
            return Err(PkiError::InvalidValidity(format!(
                "CA lifetime {} and leaf lifetime {} must both be positive",
                self.ca, self.leaf
            )));
        }
        if self.backdate < Duration::ZERO || self.backdate > Duration::days(1) {
            return Err(PkiError::InvalidValidity(format!(
                "backdate {} must be between 0 and one day",
                self.backdate
            )));
        }
        Ok(())
    }

    /// notBefore and notAfter for a certificate signed at `now` that lives `lifetime`.
    pub(crate) fn window(
        &self,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> (OffsetDateTime, OffsetDateTime) {
        (now - self.backdate, now + lifetime)
    }
}

/// Formats a time as RFC 3339 for messages and status.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kubeadms() {
        let v = Validity::default();
        assert_eq!(v.ca.whole_days(), 3650);
        assert_eq!(v.leaf.whole_days(), 365);
        v.check().unwrap();
    }

    #[test]
    fn window_starts_in_the_past() {
        let now = OffsetDateTime::now_utc();
        let (nb, na) = Validity::default().window(now, Duration::days(1));
        assert!(nb < now && now - nb == Duration::minutes(5));
        assert_eq!(na - now, Duration::days(1));
    }

    #[test]
    fn non_positive_lifetimes_are_refused() {
        let v = Validity {
            leaf: Duration::ZERO,
            ..Validity::default()
        };
        let err = v.check().unwrap_err().to_string();
        assert!(err.contains("must both be positive"), "{err}");
    }

    #[test]
    fn rfc3339_is_readable() {
        let t = OffsetDateTime::from_unix_timestamp(0).unwrap();
        assert_eq!(rfc3339(t), "1970-01-01T00:00:00Z");
    }
}
