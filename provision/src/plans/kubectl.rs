//! Talking to the new cluster's API from its own master: `kubectl` from the
//! bundle with a kubeconfig that lives on the host.
//!
//! Running it on the host rather than from the workstation means the
//! workstation needs no route to the API (a bastion is enough), and nothing
//! but SSH crosses the network. Manifests travel on standard input, so a
//! Secret's data never appears on a command line.

use futures::future::BoxFuture;

use crate::host::Host;
use crate::ssh::ExecOptions;
use crate::ssh::shell::quote;
use crate::tasks::{Check, Failure, Progress, Task};

/// The kubeconfig with `system:masters` rights that exists only on the first
/// master (kubeadm ≥ 1.29): what bootstraps RBAC itself.
pub const SUPER_ADMIN_CONF: &str = "/etc/kubernetes/super-admin.conf";
/// The revocable admin kubeconfig (`kubeadm:cluster-admins`).
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
/// Field manager of everything kubeseed applies.
pub const FIELD_MANAGER: &str = "kubeseed";

/// `kubectl --kubeconfig KUBECONFIG` as a command-line prefix.
pub fn kubectl(kubeconfig: &str) -> String {
    format!("/usr/local/bin/kubectl --kubeconfig {}", quote(kubeconfig))
}

/// Server-side apply of a manifest (YAML or JSON, one or more objects).
#[derive(Clone)]
pub struct KubectlApply {
    id: String,
    describe: String,
    kubeconfig: String,
    manifest: String,
}

impl std::fmt::Debug for KubectlApply {
    // Manifests may hold Secrets: never in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubectlApply")
            .field("id", &self.id)
            .field("kubeconfig", &self.kubeconfig)
            .field("manifest_bytes", &self.manifest.len())
            .finish()
    }
}

impl KubectlApply {
    /// Applies `manifest` with the credentials of `kubeconfig` (a path on the host).
    pub fn new(
        id: impl Into<String>,
        describe: impl Into<String>,
        kubeconfig: impl Into<String>,
        manifest: impl Into<String>,
    ) -> Self {
        KubectlApply {
            id: id.into(),
            describe: describe.into(),
            kubeconfig: kubeconfig.into(),
            manifest: manifest.into(),
        }
    }

    fn with_stdin(&self) -> ExecOptions {
        ExecOptions {
            stdin: Some(self.manifest.clone().into_bytes()),
            ..ExecOptions::sudo().with_timeout(std::time::Duration::from_secs(120))
        }
    }
}

impl Task for KubectlApply {
    fn id(&self) -> &str {
        &self.id
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn check<'a>(&'a self, host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            // kubectl diff: 0 = no difference, 1 = differences, >1 = error
            // (such as a kind the API does not know yet): apply will say why.
            let cmd = format!(
                "{} diff --server-side --field-manager={FIELD_MANAGER} --force-conflicts -f - >/dev/null",
                kubectl(&self.kubeconfig)
            );
            let out = host.exec(&cmd, self.with_stdin()).await?;
            Ok(match out.status {
                crate::ssh::ExitStatus::Code(0) => Check::UpToDate,
                crate::ssh::ExitStatus::Code(1) => Check::apply("differs from the cluster"),
                _ => Check::apply(format!(
                    "cannot compare: {}",
                    out.stderr_text().trim().lines().last().unwrap_or_default()
                )),
            })
        })
    }

    fn apply<'a>(
        &'a self,
        host: &'a dyn Host,
        _progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let cmd = format!(
                "{} apply --server-side --field-manager={FIELD_MANAGER} --force-conflicts -f -",
                kubectl(&self.kubeconfig)
            );
            host.run_with(&cmd, self.with_stdin()).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::{FakeHost, output};

    #[tokio::test]
    async fn no_difference_means_nothing_to_apply() {
        let host = FakeHost::new("h:22");
        host.on(" diff ", output(0, ""));
        let t = KubectlApply::new("x", "apply x", ADMIN_CONF, "kind: Namespace");
        assert_eq!(t.check(&host).await.unwrap(), Check::UpToDate);
        let host = FakeHost::new("h:22");
        host.on(" diff ", output(1, ""));
        assert!(matches!(t.check(&host).await.unwrap(), Check::Apply { .. }));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let t = KubectlApply::new("x", "apply x", ADMIN_CONF, "data: {ca.key: SECRET}");
        assert!(!format!("{t:?}").contains("SECRET"));
    }
}
