//! The tasks that make a host a master: kernel prerequisites, the verified
//! binaries, containerd, certificates, etcd, the three control-plane
//! components, the kubelet, CNI and kube-proxy — each configured, started
//! and waited for in an order where every step's dependencies are healthy.
//!
//! The seed (`bootstrap seed`) and a joining master (the operator) run the
//! same list; they differ in their inputs (the etcd member founds the
//! cluster or joins it) and in what they add around it.

use std::path::Path;
use std::time::Duration;

use crate::cluster::{ClusterSpec, EtcdMember, NodeSpec};
use crate::files::HostFiles;
use crate::pki::{KUBELET_PKI_DIR, PKI_DIR};
use crate::render::ExtraArgs;
use crate::render::{
    self, ApiServerInput, ContainerdInput, ControllerManagerInput, EncryptionConfig, EtcdInput,
    InitialClusterState, KubeProxyInput, KubeletCredentials, KubeletInput, RenderError,
    SchedulerInput, paths,
};
use crate::ssh::shell::quote;
use crate::tasks::{EnsureDirs, Shell, SystemdService, Task, WaitUntil, WriteFiles};

use super::artifacts::{ImportImage, LinkInto, StageArtifacts, StagedArtifact, bundle_dir};
use super::cni::CniFromNode;
use super::kubectl::{ApiAccess, kubectl};

/// Where a host records which cluster it belongs to; preflight reads it to
/// tell a re-run on this cluster's host from a host of another cluster.
pub const CLUSTER_ID_FILE: &str = "/var/lib/kubeseed/cluster-id";

/// The first task on every host: write down which cluster it belongs to,
/// what preflight reads to refuse a host of another cluster.
pub(crate) fn record_cluster_id(cluster_id: &str) -> WriteFiles {
    let mut identity = HostFiles::default();
    identity.insert_public(CLUSTER_ID_FILE, format!("{cluster_id}\n"));
    WriteFiles::new(
        "host/cluster-id",
        "record the cluster this host belongs to",
        identity,
    )
}

/// An image from the bundle to import on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleImage {
    /// Path inside the bundle, such as `images/pause.oci.tar`.
    pub rel: String,
    /// The image name inside the archive.
    pub name: String,
    /// sha256 of the archive.
    pub sha256: String,
}

/// The verified bundle as a plan uses it.
#[derive(Debug, Clone)]
pub struct BundleOnHost {
    /// The bundle's key (its directory on hosts).
    pub key: String,
    /// Every file to stage.
    pub artifacts: Vec<StagedArtifact>,
    /// SHA256SUMS and VERSIONS, kept beside them.
    pub manifests: Vec<(String, Vec<u8>)>,
    /// The pause image (containerd's sandbox image).
    pub pause: BundleImage,
    /// The CoreDNS image (cluster DNS, on every node that may run it).
    pub coredns: BundleImage,
    /// Other images to import (the operator's, on masters).
    pub images: Vec<BundleImage>,
}

impl BundleOnHost {
    /// The same bundle with only the artifacts at `rels` (a host that needs
    /// a few programs is not sent all of them); no images.
    pub fn only(&self, rels: &[&str]) -> BundleOnHost {
        BundleOnHost {
            artifacts: self
                .artifacts
                .iter()
                .filter(|a| rels.contains(&a.rel.as_str()))
                .cloned()
                .collect(),
            images: Vec::new(),
            ..self.clone()
        }
    }

    /// Symlinks from the install locations into the staged bundle.
    pub(crate) fn links(&self) -> Vec<(String, String)> {
        let dir = bundle_dir(&self.key);
        self.artifacts
            .iter()
            .filter_map(|a| {
                let name = a.rel.rsplit('/').next()?;
                let target = format!("{dir}/{}", a.rel);
                if a.rel.starts_with("bin/") {
                    Some((format!("{}/{name}", paths::BIN_DIR), target))
                } else if a.rel.starts_with("cni/") {
                    Some((format!("{}/{name}", paths::CNI_BIN_DIR), target))
                } else {
                    None
                }
            })
            .collect()
    }
}

/// Everything a master's plan is made from.
#[derive(Debug)]
pub struct ControlPlaneInput<'a> {
    /// The cluster, this master included.
    pub spec: &'a ClusterSpec,
    /// This master as a node (name, address, labels, taints, host profile).
    pub node: &'a NodeSpec,
    /// This master's etcd member, when it runs one (stacked).
    pub etcd: Option<EtcdPlan>,
    /// Its certificates, keys and kubeconfigs, as the host should hold them.
    pub pki: HostFiles,
    /// Encryption at rest of Secrets.
    pub encryption: EncryptionConfig,
    /// The binaries and images.
    pub bundle: BundleOnHost,
    /// The cluster's id, recorded on the host.
    pub cluster_id: String,
    /// Tasks to run once the API answers and before anything uses
    /// `admin.conf` (the seed binds `kubeadm:cluster-admins` there).
    pub after_api: Vec<Box<dyn Task>>,
    /// Tasks between etcd's configuration and its start, and after it is
    /// healthy: a joining member is added as a learner, then promoted.
    pub etcd_hooks: EtcdHooks,
    /// What the member's object asks of its components.
    pub components: ComponentSettings,
}

/// A master's own settings for its components (a `ControlPlaneMember`'s
/// `apiServer`, `controllerManager` and `scheduler`).
#[derive(Debug, Clone, Default)]
pub struct ComponentSettings {
    /// Extra kube-apiserver flags.
    pub api_server: ExtraArgs,
    /// Extra kube-controller-manager flags.
    pub controller_manager: ExtraArgs,
    /// Extra kube-scheduler flags.
    pub scheduler: ExtraArgs,
}

/// Tasks around a stacked etcd member's start (see [`super::etcd_join`]).
#[derive(Debug, Default)]
pub struct EtcdHooks {
    /// Before the unit starts.
    pub before_start: Vec<Box<dyn Task>>,
    /// Once the member answers (for a joining learner, before it can be
    /// healthy: the promotion goes here).
    pub after_healthy: Vec<Box<dyn Task>>,
}

impl EtcdHooks {
    /// A joining member's: added as a learner before it starts, promoted
    /// once it has caught up (within `catch_up`).
    pub fn learner(
        etcd: &std::sync::Arc<crate::etcd::EtcdClient>,
        name: &str,
        peer_url: &str,
        catch_up: Duration,
    ) -> Self {
        EtcdHooks {
            before_start: vec![Box::new(super::etcd_join::AddLearner::new(
                etcd.clone(),
                name,
                peer_url,
            ))],
            after_healthy: vec![Box::new(super::etcd_join::PromoteLearner::new(
                etcd.clone(),
                peer_url,
                catch_up,
            ))],
        }
    }
}

/// How this master's etcd member starts.
#[derive(Debug, Clone)]
pub struct EtcdPlan {
    /// The member.
    pub member: EtcdMember,
    /// `--initial-cluster`.
    pub initial_cluster: String,
    /// Founding or joining.
    pub state: InitialClusterState,
    /// Extra etcd flags (an `EtcdMember`'s `extraArgs`).
    pub extra_args: ExtraArgs,
}

fn pki_path(rel: &str) -> String {
    format!("{PKI_DIR}/{rel}")
}

/// The files a component reads among the PKI's, so a change to one of them
/// (and only to them) restarts it.
fn pki_subset(pki: &HostFiles, names: &[&str]) -> HostFiles {
    pki.filter(|p| names.iter().any(|n| p == Path::new(n)))
}

fn service_digest(rendered: &HostFiles, inputs: &HostFiles) -> String {
    let mut all = rendered.clone();
    all.extend(inputs.clone());
    all.digest()
}

/// The tasks that make the host a master, in order.
pub fn control_plane(input: ControlPlaneInput<'_>) -> Result<Vec<Box<dyn Task>>, RenderError> {
    let ControlPlaneInput {
        spec,
        node,
        etcd,
        pki,
        encryption,
        bundle,
        cluster_id,
        after_api,
        etcd_hooks,
        components,
    } = input;
    let mut tasks: Vec<Box<dyn Task>> = Vec::new();
    let api_timeout = Duration::from_secs(180);

    let mut images = vec![bundle.pause.clone()];
    images.extend(bundle.images.iter().cloned());
    tasks.extend(host_runtime(node, &bundle, &cluster_id, &images)?);

    // ---- certificates ------------------------------------------------------
    tasks.push(Box::new(WriteFiles::new(
        "pki/files",
        "write certificates, keys and kubeconfigs",
        pki.clone(),
    )));

    // ---- etcd --------------------------------------------------------------
    if let Some(plan) = &etcd {
        tasks.extend(etcd_tasks(plan, &pki, etcd_hooks)?);
    }

    // ---- kube-apiserver -----------------------------------------------------
    let mut apiserver = ApiServerInput::new(spec, &node.name, encryption)?;
    apiserver.extra_args = components.api_server.clone();
    let apiserver = apiserver.render()?;
    let apiserver_inputs = pki_subset(
        &pki,
        &[
            &pki_path("ca.crt"),
            &pki_path("apiserver.crt"),
            &pki_path("apiserver.key"),
            &pki_path("apiserver-kubelet-client.crt"),
            &pki_path("apiserver-kubelet-client.key"),
            &pki_path("apiserver-etcd-client.crt"),
            &pki_path("apiserver-etcd-client.key"),
            &pki_path("front-proxy-ca.crt"),
            &pki_path("front-proxy-client.crt"),
            &pki_path("front-proxy-client.key"),
            &pki_path("sa.pub"),
            &pki_path("sa.key"),
            &pki_path("etcd/ca.crt"),
        ],
    );
    tasks.push(Box::new(EnsureDirs::new(
        "apiserver/log-dir",
        vec![(paths::AUDIT_LOG_DIR.to_owned(), 0o700)],
    )));
    tasks.push(Box::new(WriteFiles::new(
        "apiserver/files",
        "configure kube-apiserver (encryption at rest, audit)",
        apiserver.clone(),
    )));
    tasks.push(Box::new(SystemdService::new(
        "apiserver/service",
        "kube-apiserver.service",
        service_digest(&apiserver, &apiserver_inputs),
    )));
    tasks.push(Box::new(
        WaitUntil::new(
            "apiserver/ready",
            "wait for kube-apiserver /readyz",
            format!(
                "{} get --raw /readyz >/dev/null",
                kubectl(paths::CONTROLLER_MANAGER_CONF)
            ),
            api_timeout,
        )
        .unit("kube-apiserver.service"),
    ));
    tasks.extend(after_api);

    // ---- controller-manager and scheduler -----------------------------------
    let mut kcm = ControllerManagerInput::new(spec);
    kcm.extra_args = components.controller_manager.clone();
    let kcm = kcm.render()?;
    let kcm_inputs = pki_subset(
        &pki,
        &[
            paths::CONTROLLER_MANAGER_CONF,
            &pki_path("ca.crt"),
            &pki_path("ca.key"),
            &pki_path("sa.key"),
            &pki_path("front-proxy-ca.crt"),
        ],
    );
    tasks.push(Box::new(WriteFiles::new(
        "controller-manager/files",
        "configure kube-controller-manager",
        kcm.clone(),
    )));
    tasks.push(Box::new(SystemdService::new(
        "controller-manager/service",
        "kube-controller-manager.service",
        service_digest(&kcm, &kcm_inputs),
    )));
    tasks.push(Box::new(
        WaitUntil::new(
            "controller-manager/healthz",
            "wait for kube-controller-manager /healthz",
            local_healthz(10257),
            api_timeout,
        )
        .unit("kube-controller-manager.service"),
    ));
    let scheduler = SchedulerInput {
        extra_args: components.scheduler.clone(),
    }
    .render()?;
    let scheduler_inputs = pki_subset(&pki, &[paths::SCHEDULER_CONF]);
    tasks.push(Box::new(WriteFiles::new(
        "scheduler/files",
        "configure kube-scheduler",
        scheduler.clone(),
    )));
    tasks.push(Box::new(SystemdService::new(
        "scheduler/service",
        "kube-scheduler.service",
        service_digest(&scheduler, &scheduler_inputs),
    )));
    tasks.push(Box::new(
        WaitUntil::new(
            "scheduler/healthz",
            "wait for kube-scheduler /healthz",
            local_healthz(10259),
            api_timeout,
        )
        .unit("kube-scheduler.service"),
    ));

    // ---- the node: kubelet, CNI, kube-proxy ---------------------------------
    tasks.extend(node_tasks(
        spec,
        node,
        &pki,
        KubeletCredentials::Issued,
        &ApiAccess::local_admin(spec.endpoint.port),
    )?);
    Ok(tasks)
}

/// What every node's host gets first: its cluster's id, the kernel settings,
/// the staged and linked binaries, containerd (configured, started, ready)
/// and the images it runs from the bundle (nothing is pulled).
pub(crate) fn host_runtime(
    node: &NodeSpec,
    bundle: &BundleOnHost,
    cluster_id: &str,
    images: &[BundleImage],
) -> Result<Vec<Box<dyn Task>>, RenderError> {
    let mut tasks: Vec<Box<dyn Task>> = Vec::new();
    // ---- the host itself -------------------------------------------------
    tasks.push(Box::new(record_cluster_id(cluster_id)));
    tasks.push(Box::new(WriteFiles::new(
        "host/kernel-files",
        "write kernel module and sysctl settings",
        render::kernel::render(),
    )));
    tasks.push(Box::new(kernel_apply()));

    // ---- binaries and the container runtime -------------------------------
    let links = bundle.links();
    tasks.push(Box::new(StageArtifacts::new(
        bundle.key.clone(),
        bundle.artifacts.clone(),
        bundle.manifests.clone(),
    )));
    tasks.push(Box::new(LinkInto::new("bundle/install", links)));
    let containerd = ContainerdInput {
        host: &node.host,
        sandbox_image: bundle.pause.name.clone(),
    }
    .render()?;
    let containerd_digest = containerd.digest();
    tasks.push(Box::new(WriteFiles::new(
        "containerd/files",
        "configure containerd",
        containerd,
    )));
    tasks.push(Box::new(SystemdService::new(
        "containerd/service",
        "containerd.service",
        containerd_digest,
    )));
    tasks.push(Box::new(
        WaitUntil::new(
            "containerd/ready",
            "wait for containerd",
            format!(
                "ctr --address {} version >/dev/null",
                paths::CONTAINERD_SOCKET
            ),
            Duration::from_secs(60),
        )
        .unit("containerd.service"),
    ));
    for image in images {
        tasks.push(Box::new(ImportImage::new(
            format!(
                "images/{}",
                image
                    .rel
                    .trim_start_matches("images/")
                    .trim_end_matches(".oci.tar")
            ),
            format!("{}/{}", bundle_dir(&bundle.key), image.rel),
            image.name.clone(),
            image.sha256.clone(),
        )));
    }

    Ok(tasks)
}

/// An etcd member's tasks: its data directory, configuration, unit and the
/// waits until it answers and is healthy, with `hooks` around its start.
/// A master's plan (stacked) and a standalone member's share them.
pub(crate) fn etcd_tasks(
    plan: &EtcdPlan,
    pki: &HostFiles,
    hooks: EtcdHooks,
) -> Result<Vec<Box<dyn Task>>, RenderError> {
    let mut tasks: Vec<Box<dyn Task>> = Vec::new();
    let files = EtcdInput {
        member: &plan.member,
        initial_cluster: plan.initial_cluster.clone(),
        initial_cluster_state: plan.state,
        extra_args: plan.extra_args.clone(),
    }
    .render()?;
    let inputs = pki.filter(|p| p.starts_with(pki_path("etcd")));
    tasks.push(Box::new(EnsureDirs::new(
        "etcd/data-dir",
        vec![(plan.member.data_dir.clone(), 0o700)],
    )));
    tasks.push(Box::new(WriteFiles::new(
        "etcd/files",
        "configure etcd",
        files.clone(),
    )));
    // `--initial-cluster*` are read only when the data directory is
    // empty, and every later plan (another member joining, a re-issued
    // certificate) renders them differently: they are left out of the
    // digest that decides a restart.
    let every_start = EtcdInput {
        member: &plan.member,
        initial_cluster: plan
            .initial_cluster
            .split(',')
            .filter(|e| e.split_once('=').map(|(n, _)| n) == Some(&plan.member.member.name))
            .collect::<Vec<_>>()
            .join(","),
        initial_cluster_state: InitialClusterState::Existing,
        extra_args: plan.extra_args.clone(),
    }
    .render()?;
    tasks.extend(hooks.before_start);
    tasks.push(Box::new(SystemdService::new(
        "etcd/service",
        "etcd.service",
        service_digest(&every_start, &inputs),
    )));
    if plan.state == InitialClusterState::Existing {
        // A joining member starts as a learner, and a learner fails
        // `endpoint health` (it serves no linearizable reads) until it is
        // promoted: first wait for it to answer at all.
        tasks.push(Box::new(
            WaitUntil::new(
                "etcd/started",
                "wait for the new etcd member to answer",
                etcd_ctl(plan.member.client_port, "endpoint status"),
                Duration::from_secs(120),
            )
            .unit("etcd.service"),
        ));
    }
    tasks.extend(hooks.after_healthy);
    tasks.push(Box::new(
        WaitUntil::new(
            "etcd/health",
            "wait for etcd to be healthy",
            etcd_ctl(plan.member.client_port, "endpoint health"),
            Duration::from_secs(120),
        )
        .unit("etcd.service"),
    ));
    Ok(tasks)
}

/// The kubelet, the node's labels, its CNI configuration, kube-proxy, and
/// the wait for the Node to be Ready. Masters and workers share them;
/// `api` is how commands on the host read the Node (a master: its admin
/// kubeconfig; a worker: the kubelet's own credentials, which may read but
/// not label it — a worker's caller passes no labels a kubelet may not set).
pub fn node_tasks(
    spec: &ClusterSpec,
    node: &NodeSpec,
    pki: &HostFiles,
    credentials: KubeletCredentials,
    api: &ApiAccess,
) -> Result<Vec<Box<dyn Task>>, RenderError> {
    let mut tasks: Vec<Box<dyn Task>> = Vec::new();
    let kubelet = KubeletInput {
        spec,
        node,
        credentials,
    }
    .render()?;
    let kubelet_inputs = pki.filter(|p| {
        p == Path::new(paths::KUBELET_CONF)
            || p == Path::new(paths::BOOTSTRAP_KUBELET_CONF)
            || p == Path::new(&pki_path("ca.crt"))
            || p.starts_with(KUBELET_PKI_DIR)
    });
    tasks.push(Box::new(WriteFiles::new(
        "kubelet/files",
        "configure the kubelet",
        kubelet.clone(),
    )));
    tasks.push(Box::new(SystemdService::new(
        "kubelet/service",
        "kubelet.service",
        service_digest(&kubelet, &kubelet_inputs),
    )));
    let get_node = format!("{} get node {}", api.kubectl(), quote(&node.name));
    tasks.push(Box::new(
        WaitUntil::new(
            "kubelet/registered",
            format!("wait for Node {} to register", node.name),
            format!("{get_node} >/dev/null"),
            Duration::from_secs(120),
        )
        .unit("kubelet.service"),
    ));
    let api_labels = render::api_only_labels(&node.labels);
    if !api_labels.is_empty() {
        let pairs: Vec<String> = api_labels
            .iter()
            .map(|(k, v)| quote(&format!("{k}={v}")))
            .collect();
        // A label selector tells an empty value from a missing label, which
        // a jsonpath read cannot (both print nothing).
        let selector: Vec<String> = api_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let check = format!(
            "{} get nodes --selector {} --field-selector {} -o name | grep -q .",
            api.kubectl(),
            quote(&selector.join(",")),
            quote(&format!("metadata.name={}", node.name))
        );
        tasks.push(Box::new(
            Shell::new(
                "node/labels",
                "label the Node (labels a kubelet may not set itself)",
                format!(
                    "{} label node {} --overwrite {}",
                    api.kubectl(),
                    quote(&node.name),
                    pairs.join(" ")
                ),
            )
            .unless(check, "labels missing"),
        ));
    }
    if spec.pod_network.by_kubeseed() {
        tasks.push(Box::new(CniFromNode::new(node.name.clone(), api.clone())));
    }
    let proxy = KubeProxyInput { spec, node }.render()?;
    let proxy_inputs = pki_subset(pki, &[paths::KUBE_PROXY_CONF]);
    tasks.push(Box::new(WriteFiles::new(
        "kube-proxy/files",
        "configure kube-proxy",
        proxy.clone(),
    )));
    tasks.push(Box::new(SystemdService::new(
        "kube-proxy/service",
        "kube-proxy.service",
        service_digest(&proxy, &proxy_inputs),
    )));
    tasks.push(Box::new(
        WaitUntil::new(
            "kube-proxy/healthz",
            "wait for kube-proxy /healthz",
            "if command -v curl >/dev/null; then curl -sf --max-time 5 http://127.0.0.1:10256/healthz >/dev/null; \
             else ss -Htln 'sport = :10256' | grep -q .; fi",
            Duration::from_secs(120),
        )
        .unit("kube-proxy.service"),
    ));
    if !spec.pod_network.by_kubeseed() {
        // NotReady until the user's CNI runs: that is theirs to install,
        // once the API answers (`--pod-network none`).
        return Ok(tasks);
    }
    tasks.push(Box::new(
        WaitUntil::new(
            "node/ready",
            format!("wait for Node {} to be Ready", node.name),
            format!(
                "[ \"$({get_node} -o jsonpath='{{.status.conditions[?(@.type==\"Ready\")].status}}')\" = True ]"
            ),
            Duration::from_secs(180),
        )
        .unit("kubelet.service"),
    ));
    Ok(tasks)
}

/// Sets the sysctls and loads the modules that the host lets us set; a
/// value the host does not let us write (a read-only /proc/sys in a
/// container) is left to preflight, which reports it, and to the kubelet's
/// `protectKernelDefaults`, which refuses to start without it.
fn kernel_apply() -> Shell {
    let mut checks = Vec::new();
    for (key, value) in render::kernel::sysctls() {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        checks.push(format!(
            "{{ [ ! -w {p} ] || [ \"$(cat {p})\" = {v} ]; }}",
            p = quote(&path),
            v = quote(value)
        ));
    }
    Shell::new(
        "host/kernel-apply",
        "load kernel modules, apply sysctls",
        "for m in overlay br_netfilter; do modprobe \"$m\" 2>/dev/null || true; done; \
         sysctl --system >/dev/null 2>&1 || true",
    )
    .unless(checks.join(" && "), "sysctls differ")
}

/// An `etcdctl` command against the local member, through the health-check
/// client's certificate.
fn etcd_ctl(client_port: u16, command: &str) -> String {
    format!(
        "ETCDCTL_API=3 {}/etcdctl --endpoints=https://127.0.0.1:{client_port} \
         --cacert={ca} --cert={crt} --key={key} --command-timeout=5s {command} >/dev/null",
        paths::BIN_DIR,
        ca = pki_path("etcd/ca.crt"),
        crt = pki_path("etcd/healthcheck-client.crt"),
        key = pki_path("etcd/healthcheck-client.key"),
    )
}

/// A component's /healthz on loopback. Its serving certificate is
/// self-signed (as with kubeadm), so TLS is not verified here; where curl is
/// missing, a listening socket has to do.
fn local_healthz(port: u16) -> String {
    format!(
        "if command -v curl >/dev/null; then curl -skf --max-time 5 https://127.0.0.1:{port}/healthz >/dev/null; \
         else ss -Htln 'sport = :{port}' | grep -q .; fi"
    )
}
