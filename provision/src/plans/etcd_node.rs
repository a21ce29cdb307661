//! A standalone etcd member (the External topology): a host that runs etcd
//! and nothing else. It takes from the master's plan exactly the etcd part
//! (configuration, unit, learner hooks, waits) and, of the bundle, only the
//! etcd programs.

use crate::files::HostFiles;
use crate::render::RenderError;
use crate::tasks::{Task, WriteFiles};

use super::artifacts::{LinkInto, StageArtifacts};
use super::control_plane::{BundleOnHost, EtcdHooks, EtcdPlan, etcd_tasks, record_cluster_id};

/// The bundle's files an etcd-only host needs.
pub const ETCD_PROGRAMS: [&str; 2] = ["bin/etcd", "bin/etcdctl"];

/// What a standalone member's plan is made from.
#[derive(Debug)]
pub struct EtcdNodeInput {
    /// The member and how it starts.
    pub etcd: EtcdPlan,
    /// Its etcd certificates (CA, server, peer, health-check client).
    pub pki: HostFiles,
    /// The verified bundle; only [`ETCD_PROGRAMS`] are staged from it.
    pub bundle: BundleOnHost,
    /// The cluster's id, recorded on the host for preflight.
    pub cluster_id: String,
    /// Learner add before the start, promotion once it answers.
    pub hooks: EtcdHooks,
}

/// The tasks, in order: the host's cluster id, the etcd programs, the
/// certificates, then etcd itself.
pub fn etcd_node(input: EtcdNodeInput) -> Result<Vec<Box<dyn Task>>, RenderError> {
    let EtcdNodeInput {
        etcd,
        pki,
        bundle,
        cluster_id,
        hooks,
    } = input;
    let bundle = bundle.only(&ETCD_PROGRAMS);
    let mut tasks: Vec<Box<dyn Task>> = vec![
        Box::new(record_cluster_id(&cluster_id)),
        Box::new(StageArtifacts::new(
            bundle.key.clone(),
            bundle.artifacts.clone(),
            bundle.manifests.clone(),
        )),
        Box::new(LinkInto::new("bundle/install", bundle.links())),
        Box::new(WriteFiles::new(
            "pki/files",
            "write etcd's certificates and keys",
            pki.clone(),
        )),
    ];
    tasks.extend(etcd_tasks(&etcd, &pki, hooks)?);
    Ok(tasks)
}
