//! Golden files: compared by default, rewritten only when a person asks.
//!
//! One switch for every golden file in the workspace (the chart's renders,
//! the provisioning renderers' files): `KUBESEED_UPDATE_GOLDEN=1`. It is
//! refused when `CI` is set, so CI always compares and a job cannot make a
//! stale golden file pass by rewriting it.

use std::ffi::OsStr;

/// The variable that asks a golden test to rewrite its files.
pub const UPDATE_ENV: &str = "KUBESEED_UPDATE_GOLDEN";

/// The name the chart's golden test used before; refused so an old habit
/// does not silently compare instead of rewriting.
const OLD_UPDATE_ENV: &str = "UPDATE_GOLDEN";

/// Whether the golden files should be rewritten instead of compared.
///
/// # Panics
/// When `KUBESEED_UPDATE_GOLDEN` is set under `CI`, or the old
/// `UPDATE_GOLDEN` is set: a test that panics here fails, which is the point.
pub fn update_requested() -> bool {
    match decide(
        std::env::var_os(UPDATE_ENV).as_deref(),
        std::env::var_os("CI").as_deref(),
        std::env::var_os(OLD_UPDATE_ENV).as_deref(),
    ) {
        Ok(update) => update,
        Err(reason) => panic!("{reason}"),
    }
}

/// The decision, from the three variables' values.
fn decide(update: Option<&OsStr>, ci: Option<&OsStr>, old: Option<&OsStr>) -> Result<bool, String> {
    if old.is_some() {
        return Err(format!(
            "{OLD_UPDATE_ENV} is no longer read: set {UPDATE_ENV}=1 to rewrite golden files"
        ));
    }
    let update = match update {
        None => return Ok(false),
        Some(v) if v == "1" => true,
        Some(v) if v.is_empty() || v == "0" => false,
        Some(v) => {
            return Err(format!(
                "{UPDATE_ENV}={} is not understood: set it to 1 to rewrite golden files",
                v.to_string_lossy()
            ));
        }
    };
    let in_ci = ci.is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    if update && in_ci {
        return Err(format!(
            "{UPDATE_ENV}=1 is refused under CI: CI compares golden files and never rewrites them; \
             rewrite them on a workstation and commit the reviewed diff"
        ));
    }
    Ok(update)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<&OsStr> {
        Some(OsStr::new(s))
    }

    #[test]
    fn compares_by_default_and_rewrites_on_request() {
        assert_eq!(decide(None, None, None), Ok(false));
        assert_eq!(decide(os("1"), None, None), Ok(true));
        assert_eq!(decide(os("0"), os("true"), None), Ok(false));
        assert_eq!(decide(None, os("true"), None), Ok(false));
    }

    #[test]
    fn refused_under_ci_and_under_the_old_name() {
        let e = decide(os("1"), os("true"), None).unwrap_err();
        assert!(e.contains("refused under CI"), "{e}");
        assert!(decide(os("1"), os("1"), None).is_err());
        assert_eq!(decide(os("1"), os("false"), None), Ok(true));
        let e = decide(None, None, os("1")).unwrap_err();
        assert!(e.contains("KUBESEED_UPDATE_GOLDEN"), "{e}");
        assert!(decide(os("yes"), None, None).is_err());
    }
}
