//! Recording the seed as the cluster's first `ControlPlaneMember` and its
//! `EtcdMember` (owned by it, as for every stacked master), both with a
//! status that says they are provisioned and Ready — so the operator adopts
//! them as they are instead of provisioning them again.

use futures::future::BoxFuture;
use serde_json::{Value, json};

use kubeseed_crds::v1alpha1::{
    ControlPlaneMember, ControlPlaneMemberSpec, EtcdMember, EtcdMemberSpec, EtcdPlacement,
    EtcdTopology, HostSpec, SecretRef, conditions,
};
use kubeseed_provision::bundle::Versions;
use kubeseed_provision::host::Host;
use kubeseed_provision::plans::{ApiAccess, FIELD_MANAGER};
use kubeseed_provision::ssh::ExecOptions;
use kubeseed_provision::ssh::shell::quote;
use kubeseed_provision::tasks::{Check, Failure, Progress, Task, reasons};

use super::operator::{NAMESPACE, SSH_SECRET};
use crate::state::ClusterRecord;

/// Reason of the conditions the seed writes.
pub const REASON_SEEDED: &str = "Seeded";

/// What the records are made from.
#[derive(Debug, Clone)]
pub struct MembersInput {
    /// The cluster (its seed host and versions).
    pub record: ClusterRecord,
    /// The host key the seed connected with (pinned in the members' spec).
    pub host_key: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// The bundle's versions.
    pub versions: Versions,
}

/// The task.
#[derive(Debug, Clone)]
pub struct RecordMembers {
    input: MembersInput,
}

impl RecordMembers {
    /// What the seed's configuration took from the cluster, as the operator
    /// computes it (so it does not provision the seed again for nothing).
    fn cluster_inputs(&self) -> Result<String, Failure> {
        kubeseed_provision::plans::cluster_inputs_digest(&self.input.record.spec(), self.name())
            .map_err(|e| Failure::new(reasons::COMMAND_FAILED, e.to_string()))
    }

    /// Records the seed described by `input`.
    pub fn new(input: MembersInput) -> Self {
        RecordMembers { input }
    }

    fn name(&self) -> &str {
        &self.input.record.seed.node_name
    }

    fn host_spec(&self) -> HostSpec {
        let seed = &self.input.record.seed;
        HostSpec {
            address: seed.address.clone(),
            port: (seed.port != 22).then_some(i32::from(seed.port)),
            user: (seed.user != "root").then(|| seed.user.clone()),
            ssh_key_secret_ref: SecretRef {
                name: SSH_SECRET.into(),
                namespace: Some(NAMESPACE.into()),
            },
            host_key: Some(self.input.host_key.clone()),
            bastion: None,
        }
    }

    fn control_plane_member(&self) -> ControlPlaneMember {
        let r = &self.input.record;
        ControlPlaneMember::new(
            self.name(),
            ControlPlaneMemberSpec {
                host: self.host_spec(),
                advertise_address: Some(r.seed.advertise_address.to_string()),
                etcd: EtcdPlacement {
                    topology: EtcdTopology::Stacked,
                    client_port: None,
                    peer_port: None,
                    data_dir: None,
                },
                kubernetes_version: Some(r.kubernetes_version.clone()),
                api_server: None,
                controller_manager: None,
                scheduler: None,
                kubelet: None,
            },
        )
    }

    fn etcd_member(&self) -> EtcdMember {
        let r = &self.input.record;
        EtcdMember::new(
            self.name(),
            EtcdMemberSpec {
                host: self.host_spec(),
                advertise_address: Some(r.seed.advertise_address.to_string()),
                client_port: None,
                peer_port: None,
                data_dir: None,
                etcd_version: Some(r.etcd_version.clone()),
                extra_sans: Vec::new(),
                extra_args: Default::default(),
            },
        )
    }

    async fn get(&self, host: &dyn Host, kind: &str) -> Result<Option<Value>, Failure> {
        let cmd = format!(
            "{} get {kind} {} -o json --ignore-not-found",
            ApiAccess::local_admin(self.input.record.endpoint_port).kubectl(),
            quote(self.name())
        );
        let out = host.run(&cmd).await?;
        let text = out.stdout_text();
        if text.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Failure::new(
                reasons::UNEXPECTED_OUTPUT,
                format!("kubectl get {kind} gave no JSON: {e}"),
            )
        })
    }

    async fn apply_json(&self, host: &dyn Host, doc: &Value, extra: &str) -> Result<(), Failure> {
        let cmd = format!(
            "{} {extra} --field-manager={FIELD_MANAGER}",
            ApiAccess::local_admin(self.input.record.endpoint_port).kubectl()
        );
        let opts = ExecOptions {
            stdin: Some(doc.to_string().into_bytes()),
            ..ExecOptions::sudo()
        };
        host.run_with(&cmd, opts).await?;
        Ok(())
    }

    async fn member_id(&self, host: &dyn Host) -> Result<Option<String>, Failure> {
        let cmd = "ETCDCTL_API=3 /usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 \
                   --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt \
                   --key=/etc/kubernetes/pki/etcd/healthcheck-client.key member list -w json";
        let out = host.run(cmd).await?;
        let list: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            Failure::new(
                reasons::UNEXPECTED_OUTPUT,
                format!("etcdctl member list: {e}"),
            )
        })?;
        Ok(list["members"].as_array().and_then(|members| {
            members
                .iter()
                .find(|m| m["name"] == self.name())
                .and_then(|m| m["ID"].as_u64())
                .map(|id| format!("{id:x}"))
        }))
    }
}

fn provisioned(obj: &Value) -> bool {
    let generation = obj["metadata"]["generation"].as_i64();
    obj["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            c["type"] == conditions::PROVISIONED
                && c["status"] == "True"
                && c["observedGeneration"].as_i64() == generation
        })
    })
}

fn condition(type_: &str, message: &str, generation: i64) -> Value {
    json!(conditions::met(
        type_,
        REASON_SEEDED,
        message,
        Some(generation)
    ))
}

impl Task for RecordMembers {
    fn id(&self) -> &str {
        "members/record"
    }

    fn describe(&self) -> String {
        format!(
            "record {} as ControlPlaneMember and EtcdMember",
            self.name()
        )
    }

    fn check<'a>(&'a self, host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            let cpm = self.get(host, "controlplanemembers.kubeseed.io").await?;
            let em = self.get(host, "etcdmembers.kubeseed.io").await?;
            Ok(match (cpm, em) {
                (Some(c), Some(e)) if provisioned(&c) && provisioned(&e) => Check::UpToDate,
                _ => Check::apply("not recorded as provisioned"),
            })
        })
    }

    fn apply<'a>(
        &'a self,
        host: &'a dyn Host,
        _progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let cpm = serde_json::to_value(self.control_plane_member()).map_err(serialize)?;
            self.apply_json(host, &cpm, "apply --server-side --force-conflicts -f -")
                .await?;
            let cpm = self
                .get(host, "controlplanemembers.kubeseed.io")
                .await?
                .ok_or_else(|| {
                    Failure::new(reasons::COMMAND_FAILED, "the ControlPlaneMember vanished")
                })?;
            let uid = cpm["metadata"]["uid"].clone();
            let mut em = serde_json::to_value(self.etcd_member()).map_err(serialize)?;
            em["metadata"]["ownerReferences"] = json!([{
                "apiVersion": "kubeseed.io/v1alpha1", "kind": "ControlPlaneMember",
                "name": self.name(), "uid": uid, "controller": true, "blockOwnerDeletion": true,
            }]);
            self.apply_json(host, &em, "apply --server-side --force-conflicts -f -")
                .await?;
            let em = self
                .get(host, "etcdmembers.kubeseed.io")
                .await?
                .ok_or_else(|| Failure::new(reasons::COMMAND_FAILED, "the EtcdMember vanished"))?;

            let v = &self.input.versions;
            let versions = json!({
                "kubernetes": v.kubernetes(), "etcd": v.etcd(),
                "containerRuntime": format!("containerd://{}", v.containerd().trim_start_matches('v')),
            });
            let gen_c = cpm["metadata"]["generation"].as_i64().unwrap_or(1);
            let seeded = "provisioned by bootstrap seed";
            let cpm_status = json!({"status": {
                "phase": "Ready",
                "observedGeneration": gen_c,
                "conditions": [
                    condition(conditions::READY, "kube-apiserver, controller-manager, scheduler, kubelet and kube-proxy are healthy; the Node is Ready", gen_c),
                    condition(conditions::HOST_REACHABLE, "reached over SSH with the recorded host key", gen_c),
                    condition(conditions::PREFLIGHT_PASSED, "bootstrap seed's preflight passed", gen_c),
                    condition(conditions::PROVISIONED, seeded, gen_c),
                ],
                "hostKeyFingerprint": self.input.fingerprint,
                "observedHostKey": self.input.host_key,
                "nodeName": self.name(),
                "versions": versions,
                "etcdMember": self.name(),
                "clusterInputs": self.cluster_inputs()?,
            }});
            self.apply_json(
                host,
                &cpm_status,
                &format!(
                    "patch controlplanemembers.kubeseed.io {} --subresource=status --type=merge --patch-file=/dev/stdin",
                    quote(self.name())
                ),
            )
            .await?;
            let gen_e = em["metadata"]["generation"].as_i64().unwrap_or(1);
            let mut em_status = json!({"status": {
                "phase": "Ready",
                "observedGeneration": gen_e,
                "conditions": [
                    condition(conditions::READY, "the member is healthy", gen_e),
                    condition(conditions::HOST_REACHABLE, "reached over SSH with the recorded host key", gen_e),
                    condition(conditions::PREFLIGHT_PASSED, "bootstrap seed's preflight passed", gen_e),
                    condition(conditions::PROVISIONED, seeded, gen_e),
                    condition(conditions::ETCD_VOTING, "the founding member of the etcd cluster", gen_e),
                ],
                "hostKeyFingerprint": self.input.fingerprint,
                "observedHostKey": self.input.host_key,
                "isLearner": false,
                "versions": {"etcd": v.etcd()},
            }});
            if let Some(id) = self.member_id(host).await? {
                em_status["status"]["memberId"] = json!(id);
            }
            self.apply_json(
                host,
                &em_status,
                &format!(
                    "patch etcdmembers.kubeseed.io {} --subresource=status --type=merge --patch-file=/dev/stdin",
                    quote(self.name())
                ),
            )
            .await?;
            Ok(())
        })
    }
}

fn serialize(e: serde_json::Error) -> Failure {
    Failure::new(
        reasons::UNEXPECTED_OUTPUT,
        format!("cannot serialise a member: {e}"),
    )
}
