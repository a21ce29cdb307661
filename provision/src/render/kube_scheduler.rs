//! kube-scheduler: its unit and KubeSchedulerConfiguration.
//!
//! The scheduler's `--kubeconfig` and its other client flags are deprecated
//! (and ignored once `--config` is given), so the kubeconfig and leader
//! election go into a configuration file; only the serving and delegated
//! authentication/authorization flags, which have no configuration field,
//! stay flags.

use serde::Serialize;

use crate::files::HostFiles;

use super::Component;
use super::error::Result;
use super::flags::{ExtraArgs, Flags};
use super::paths;
use super::unit::ServiceUnit;

const COMPONENT: Component = Component::KubeScheduler;

/// What a master's kube-scheduler is rendered from.
#[derive(Debug, Clone, Default)]
pub struct SchedulerInput {
    /// Extra flags without `--`; they override kubeseed's. Settings that
    /// only the configuration file has cannot be changed this way.
    pub extra_args: ExtraArgs,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    api_version: &'static str,
    kind: &'static str,
    client_connection: ClientConnection,
    leader_election: LeaderElection,
}

#[derive(Serialize)]
struct ClientConnection {
    kubeconfig: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LeaderElection {
    leader_elect: bool,
}

impl SchedulerInput {
    /// The flags of `kube-scheduler`, extra arguments applied.
    pub fn flags(&self) -> Result<Flags> {
        let mut f = Flags::new(COMPONENT);
        f.set("config", paths::SCHEDULER_CONFIG);
        f.set("authentication-kubeconfig", paths::SCHEDULER_CONF);
        f.set("authorization-kubeconfig", paths::SCHEDULER_CONF);
        f.set("bind-address", "127.0.0.1");
        f.set("secure-port", "10259");
        f.apply_extra(&self.extra_args)?;
        Ok(f)
    }

    /// The unit and `/etc/kubernetes/scheduler-config.yaml` (both 0644).
    pub fn render(&self) -> Result<HostFiles> {
        let config = super::yaml_file(
            COMPONENT,
            "KubeSchedulerConfiguration",
            &Config {
                api_version: "kubescheduler.config.k8s.io/v1",
                kind: "KubeSchedulerConfiguration",
                client_connection: ClientConnection {
                    kubeconfig: paths::SCHEDULER_CONF,
                },
                leader_election: LeaderElection { leader_elect: true },
            },
        )?;
        let unit = ServiceUnit {
            description: "kube-scheduler: the Kubernetes scheduler",
            documentation: "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-scheduler/",
            wants: vec!["network-online.target"],
            after: vec![],
            unit_settings: vec![],
            service_type: None,
            exec_start_pre: vec![],
            program: paths::program("kube-scheduler"),
            flags: self.flags()?,
            service_settings: vec![("Restart", "always".into()), ("RestartSec", "5s".into())],
        };
        let mut files = HostFiles::default();
        files.insert_public(paths::unit_path("kube-scheduler"), unit.render()?);
        files.insert_public(paths::SCHEDULER_CONFIG, config);
        Ok(files)
    }
}
