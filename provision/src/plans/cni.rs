//! The node's CNI configuration, which depends on the pod range
//! kube-controller-manager gave its Node: known only once the Node exists.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::cluster::Cidr;
use crate::host::Host;
use crate::render::{CniInput, paths};
use crate::ssh::shell::quote;
use crate::ssh::{ExecOptions, FileSpec};
use crate::tasks::{Check, Failure, Progress, Task, reasons};

use super::kubectl::ApiAccess;

/// How long kube-controller-manager may take to give a Node its range.
const POD_CIDR_WAIT: Duration = Duration::from_secs(120);

/// Writes the bridge + host-local configuration for the Node's `spec.podCIDR`.
#[derive(Debug, Clone)]
pub struct CniFromNode {
    node: String,
    api: ApiAccess,
}

impl CniFromNode {
    /// For Node `node`, read through `api`.
    pub fn new(node: String, api: ApiAccess) -> Self {
        CniFromNode { node, api }
    }

    /// The Node's pod range, once assigned.
    async fn pod_cidr(&self, host: &dyn Host) -> Result<Option<Cidr>, Failure> {
        let cmd = format!(
            "{} get node {} -o jsonpath='{{.spec.podCIDR}}'",
            self.api.kubectl(),
            quote(&self.node)
        );
        let out = host.run(&cmd).await?;
        let text = out.stdout_text();
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        Cidr::parse(text).map(Some).map_err(|reason| {
            Failure::new(
                reasons::UNEXPECTED_OUTPUT,
                format!("Node {} has pod range {text:?}: {reason}", self.node),
            )
        })
    }

    fn rendered(&self, pod_cidr: Cidr) -> Result<String, Failure> {
        let files = CniInput { pod_cidr }.render().map_err(|e| {
            Failure::new(
                reasons::UNEXPECTED_OUTPUT,
                format!("cannot render CNI: {e}"),
            )
        })?;
        files
            .get(paths::CNI_CONFLIST)
            .map(str::to_owned)
            .ok_or_else(|| {
                Failure::new(reasons::UNEXPECTED_OUTPUT, "no CNI configuration rendered")
            })
    }
}

impl Task for CniFromNode {
    fn id(&self) -> &str {
        "cni/config"
    }

    fn describe(&self) -> String {
        "configure pod networking (bridge, host-local)".into()
    }

    fn check<'a>(&'a self, host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            let Some(cidr) = self.pod_cidr(host).await? else {
                return Ok(Check::apply("the Node has no pod range yet"));
            };
            let want = self.rendered(cidr)?;
            let have = host.read_file(paths::CNI_CONFLIST, 1 << 20).await?;
            Ok(if have.as_deref() == Some(want.as_bytes()) {
                Check::UpToDate
            } else {
                Check::apply(format!("no configuration for {cidr}"))
            })
        })
    }

    fn apply<'a>(
        &'a self,
        host: &'a dyn Host,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let started = Instant::now();
            let cidr = loop {
                if let Some(cidr) = self.pod_cidr(host).await? {
                    break cidr;
                }
                if started.elapsed() > POD_CIDR_WAIT {
                    return Err(Failure::new(
                        reasons::NOT_HEALTHY,
                        format!(
                            "Node {} got no pod range in {} s: is kube-controller-manager running \
                             with --allocate-node-cidrs? (journalctl -u kube-controller-manager)",
                            self.node,
                            POD_CIDR_WAIT.as_secs()
                        ),
                    ));
                }
                progress("waiting for the Node's pod range".into());
                tokio::time::sleep(Duration::from_secs(1)).await;
            };
            let text = self.rendered(cidr)?;
            host.write_file(text.as_bytes(), paths::CNI_CONFLIST, &FileSpec::mode(0o644))
                .await?;
            // Older configurations would be picked before ours (by name).
            let others = format!(
                "for f in {dir}/*.conf {dir}/*.conflist; do [ -e \"$f\" ] && [ \"$f\" != {ours} ] && mv -f \"$f\" \"$f.kubeseed-disabled\"; done; true",
                dir = quote(paths::CNI_CONF_DIR),
                ours = quote(paths::CNI_CONFLIST)
            );
            host.exec(&others, ExecOptions::sudo()).await?;
            Ok(())
        })
    }
}
