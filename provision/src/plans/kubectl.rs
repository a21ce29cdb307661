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

/// How a plan's commands on a host reach the cluster's API: a kubeconfig,
/// and the server to use instead of the one it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAccess {
    kubeconfig: String,
    server: Option<String>,
}

impl ApiAccess {
    /// `admin.conf` through this master's own kube-apiserver on `port`. Its
    /// server is the cluster's endpoint (a VIP or name once there is a
    /// balancer), and a master's plan must not depend on the balancer: it
    /// runs while the endpoint is being moved, and on the masters behind it.
    pub fn local_admin(port: u16) -> Self {
        Self::local(ADMIN_CONF, port)
    }

    /// Kubeconfig `path` through this master's own kube-apiserver on `port`.
    pub fn local(path: impl Into<String>, port: u16) -> Self {
        ApiAccess {
            kubeconfig: path.into(),
            server: Some(format!("https://127.0.0.1:{port}")),
        }
    }

    /// A kubeconfig on the host, used as it is.
    pub fn kubeconfig(path: impl Into<String>) -> Self {
        ApiAccess {
            kubeconfig: path.into(),
            server: None,
        }
    }

    /// The `kubectl ...` command-line prefix.
    pub fn kubectl(&self) -> String {
        match &self.server {
            Some(server) => format!("{} --server {}", kubectl(&self.kubeconfig), quote(server)),
            None => kubectl(&self.kubeconfig),
        }
    }
}

/// Server-side apply of a manifest (YAML or JSON, one or more objects).
#[derive(Clone)]
pub struct KubectlApply {
    id: String,
    describe: String,
    access: ApiAccess,
    manifest: String,
}

impl std::fmt::Debug for KubectlApply {
    // Manifests may hold Secrets: never in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubectlApply")
            .field("id", &self.id)
            .field("access", &self.access)
            .field("manifest_bytes", &self.manifest.len())
            .finish()
    }
}

impl KubectlApply {
    /// Applies `manifest` through `access`.
    pub fn new(
        id: impl Into<String>,
        describe: impl Into<String>,
        access: ApiAccess,
        manifest: impl Into<String>,
    ) -> Self {
        KubectlApply {
            id: id.into(),
            describe: describe.into(),
            access,
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
                self.access.kubectl()
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
                self.access.kubectl()
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
        let t = KubectlApply::new(
            "x",
            "apply x",
            ApiAccess::local_admin(6443),
            "kind: Namespace",
        );
        assert_eq!(t.check(&host).await.unwrap(), Check::UpToDate);
        let host = FakeHost::new("h:22");
        host.on(" diff ", output(1, ""));
        assert!(matches!(t.check(&host).await.unwrap(), Check::Apply { .. }));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let t = KubectlApply::new(
            "x",
            "apply x",
            ApiAccess::local_admin(6443),
            "data: {ca.key: SECRET}",
        );
        assert!(!format!("{t:?}").contains("SECRET"));
    }
}
