//! The fixed cluster and nodes the render tests use: three stacked masters
//! (10.213.0.11-13, master-1 the seed) behind a VIP, and a worker in a
//! container host like the lab's.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use kubeseed_provision::cluster::{
    CgroupDriver, CgroupVersion, Cidr, ClusterSpec, EtcdMember, HostProfile, Member, NodeRole,
    NodeSpec, Taint,
};
use kubeseed_provision::files::HostFiles;
use kubeseed_provision::render::{
    self, ApiServerInput, Backend, CniInput, ContainerdInput, ControllerManagerInput,
    DEFAULT_ADVERT_INTERVAL_MS, EncryptionConfig, EncryptionKey, EtcdInput, InitialClusterState,
    KubeProxyInput, KubeletCredentials, KubeletInput, LoadBalancerInput, PodRoute, PodRoutesInput,
    Programs, Proxy, SchedulerInput, Vrrp,
};

pub const PAUSE_IMAGE: &str = "localhost/kubeseed/pause:3.10.1";

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Three stacked masters behind 10.213.0.100.
pub fn cluster() -> ClusterSpec {
    let mut spec = ClusterSpec::stacked(Member::new("master-1", ip("10.213.0.11")));
    for (name, addr) in [("master-2", "10.213.0.12"), ("master-3", "10.213.0.13")] {
        spec.control_plane.push(Member::new(name, ip(addr)));
        spec.etcd.push(EtcdMember::new(name, ip(addr)));
    }
    spec.endpoint.vip = Some(ip("10.213.0.100"));
    spec.check().unwrap();
    spec
}

/// A fixed key, so the golden files do not change between runs.
pub fn encryption() -> EncryptionConfig {
    let bytes: Vec<u8> = (0u8..32).collect();
    EncryptionConfig::new(EncryptionKey::new("key1", &bytes).unwrap())
}

/// What the lab's nspawn hosts are like (DESIGN.md, "More facts measured here").
pub fn container_host() -> HostProfile {
    HostProfile {
        cgroup_version: CgroupVersion::V1,
        cgroup_driver: CgroupDriver::Cgroupfs,
        kernel_tunables_writable: false,
        oom_score_adj_allowed: false,
    }
}

pub fn master_node(spec: &ClusterSpec, name: &str) -> NodeSpec {
    let member = spec.control_plane_member(name).unwrap();
    NodeSpec {
        name: name.to_owned(),
        ip: member.addresses[0],
        role: NodeRole::ControlPlane,
        labels: map(&[
            ("node-role.kubernetes.io/control-plane", ""),
            (
                "node.kubernetes.io/exclude-from-external-load-balancers",
                "",
            ),
        ]),
        taints: vec![Taint::control_plane()],
        kubelet_extra_args: BTreeMap::new(),
        kube_proxy_extra_args: BTreeMap::new(),
        host: HostProfile::default(),
    }
}

pub fn worker_node() -> NodeSpec {
    NodeSpec {
        name: "worker-1".into(),
        ip: ip("10.213.0.21"),
        role: NodeRole::Worker,
        labels: map(&[
            ("node-role.kubernetes.io/worker", ""),
            ("kubeseed.io/pool", "general"),
            ("topology.kubernetes.io/zone", "lab-a"),
        ]),
        taints: vec![],
        kubelet_extra_args: map(&[("housekeeping-interval", "15s")]),
        kube_proxy_extra_args: map(&[("v", "2")]),
        host: container_host(),
    }
}

/// One golden case: a host and every file rendered for it.
pub struct Case {
    pub name: &'static str,
    pub files: HostFiles,
}

fn node_files(
    spec: &ClusterSpec,
    node: &NodeSpec,
    credentials: KubeletCredentials,
    pod_cidr: &str,
) -> HostFiles {
    let mut files = HostFiles::default();
    files.extend(
        ContainerdInput {
            host: &node.host,
            sandbox_image: PAUSE_IMAGE.into(),
        }
        .render()
        .unwrap(),
    );
    files.extend(
        KubeletInput {
            spec,
            node,
            credentials,
        }
        .render()
        .unwrap(),
    );
    files.extend(KubeProxyInput { spec, node }.render().unwrap());
    files.extend(
        CniInput {
            pod_cidr: kubeseed_provision::cluster::Cidr::parse(pod_cidr).unwrap(),
        }
        .render()
        .unwrap(),
    );
    files.extend(render::kernel::render());
    files
}

/// master-1 as the seed renders it (everything default).
pub fn master_1() -> HostFiles {
    let spec = cluster();
    let mut files = HostFiles::default();
    files.extend(
        EtcdInput::founding(&spec, "master-1")
            .unwrap()
            .render()
            .unwrap(),
    );
    files.extend(
        ApiServerInput::new(&spec, "master-1", encryption())
            .unwrap()
            .render()
            .unwrap(),
    );
    files.extend(ControllerManagerInput::new(&spec).render().unwrap());
    files.extend(SchedulerInput::default().render().unwrap());
    let node = master_node(&spec, "master-1");
    files.extend(node_files(
        &spec,
        &node,
        KubeletCredentials::Issued,
        "10.244.0.0/24",
    ));
    files
}

/// master-2 joining the running etcd cluster, with extra arguments on
/// every control-plane component (overrides and additions).
pub fn master_2_join() -> HostFiles {
    let spec = cluster();
    let mut files = HostFiles::default();
    let mut etcd = EtcdInput::founding(&spec, "master-2").unwrap();
    etcd.initial_cluster =
        "master-1=https://10.213.0.11:2380,master-2=https://10.213.0.12:2380".into();
    etcd.initial_cluster_state = InitialClusterState::Existing;
    etcd.extra_args = map(&[
        ("quota-backend-bytes", "8589934592"),
        ("snapshot-count", "5000"),
    ]);
    files.extend(etcd.render().unwrap());
    let mut api = ApiServerInput::new(&spec, "master-2", encryption()).unwrap();
    api.etcd_servers = vec!["https://127.0.0.1:2379".into()];
    api.extra_args = map(&[("audit-log-maxage", "7"), ("profiling", "false")]);
    files.extend(api.render().unwrap());
    let mut cm = ControllerManagerInput::new(&spec);
    cm.extra_args = map(&[("terminated-pod-gc-threshold", "100")]);
    files.extend(cm.render().unwrap());
    files.extend(
        SchedulerInput {
            extra_args: map(&[("v", "2")]),
        }
        .render()
        .unwrap(),
    );
    let mut node = master_node(&spec, "master-2");
    node.kubelet_extra_args = map(&[("v", "2")]);
    files.extend(node_files(
        &spec,
        &node,
        KubeletCredentials::Issued,
        "10.244.1.0/24",
    ));
    files
}

/// A TLS-bootstrapped worker in a container host.
pub fn worker_1() -> HostFiles {
    let spec = cluster();
    node_files(
        &spec,
        &worker_node(),
        KubeletCredentials::Bootstrap,
        "10.244.3.0/24",
    )
}

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "master-1",
            files: master_1(),
        },
        Case {
            name: "master-2-join",
            files: master_2_join(),
        },
        Case {
            name: "worker-1",
            files: worker_1(),
        },
    ]
}

/// The `ExecStart=` command line of a unit kubeseed rendered, split into
/// arguments. Understands exactly what `escape::systemd_exec_arg` writes
/// (double quotes, `\\`, `\"`, `%%`, `$$`), so the real-program tests run
/// what systemd would run.
pub fn exec_start(unit: &str) -> Vec<String> {
    let mut joined = String::new();
    let mut inside = false;
    for line in unit.lines() {
        let line = if inside {
            line
        } else if let Some(rest) = line.strip_prefix("ExecStart=") {
            inside = true;
            rest
        } else {
            continue;
        };
        // The writer ends every continued line with a space and a
        // backslash; an argument never does (a trailing backslash is
        // doubled, an argument with a space is quoted).
        match line.strip_suffix(" \\") {
            Some(head) => {
                joined.push_str(head);
                joined.push(' ');
            }
            None => {
                joined.push_str(line);
                break;
            }
        }
    }
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = joined.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' => {
                cur.push(chars.next().unwrap());
                in_word = true;
            }
            '%' | '$' if chars.peek() == Some(&c) => {
                chars.next();
                cur.push(c);
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    args.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        args.push(cur);
    }
    args
}

/// A fixed self-signed CA certificate (P-256, CN kubernetes, valid until
/// 2126), so the load balancer's golden files do not change between runs.
pub const LB_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBgTCCASegAwIBAgIUBe32w53gaGGqMx8BcQ9JXVrhYpswCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKa3ViZXJuZXRlczAgFw0yNjEyMDMwODE2MDdaGA8yMTI2MTEw
OTA4MTYwN1owFTETMBEGA1UEAwwKa3ViZXJuZXRlczBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABPNj9MgNqQBbzppvPfKZDOIIVtcEYQOOzyV7JaxHJJr/YteODgJA
RlmHwvOYw88MVdfl3fy9gbead45A5ZjkuNejUzBRMB0GA1UdDgQWBBRl6ouC4JK/
EXuw0JsUzIaDnoljHDAfBgNVHSMEGDAWgBRl6ouC4JK/EXuw0JsUzIaDnoljHDAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQD4UKyvCuAmSEmUi8X+
HD0fBMb3pfjgBw00ND1Ok/j1EwIgQNFPdYxu1F79b2rW98EKSJf1usNFXYjv3BmN
M4aaHdI=
-----END CERTIFICATE-----
";

/// The cluster's three masters as the load balancer's backends.
fn lb_masters() -> Vec<Backend> {
    [
        ("master-1", "10.213.0.11"),
        ("master-2", "10.213.0.12"),
        ("master-3", "10.213.0.13"),
    ]
    .into_iter()
    .map(|(name, address)| Backend {
        name: name.into(),
        address: address.into(),
        port: 6443,
    })
    .collect()
}

/// lb-1 of two load-balancer hosts (10.213.0.31-32), HAProxy in front of
/// the three masters, VIP 10.213.0.100/24 on eth0.
pub fn lb_haproxy() -> LoadBalancerInput {
    LoadBalancerInput {
        proxy: Proxy::HaProxy,
        port: 6443,
        vip: ip("10.213.0.100"),
        prefix_len: 24,
        interface: "eth0".into(),
        backends: lb_masters(),
        vrrp: Vrrp {
            instance: "kubeseed_api".into(),
            router_id: 51,
            priority: 150,
            advert_interval_ms: DEFAULT_ADVERT_INTERVAL_MS,
            unicast_source: ip("10.213.0.31"),
            unicast_peers: vec![ip("10.213.0.32")],
        },
        ca_pem: LB_CA_PEM.into(),
        programs: Programs::default_for(Proxy::HaProxy),
        nginx_stream_module: None,
    }
}

/// lb-2 of three, nginx (Debian's dynamic stream module) on an IPv6 VIP,
/// two backends: one by IPv6 address, one by DNS name.
pub fn lb_nginx_ipv6() -> LoadBalancerInput {
    LoadBalancerInput {
        proxy: Proxy::Nginx,
        port: 8443,
        vip: ip("fd00:213::100"),
        prefix_len: 64,
        interface: "ens3".into(),
        backends: vec![
            Backend {
                name: "master-1".into(),
                address: "fd00:213::11".into(),
                port: 6443,
            },
            Backend {
                name: "master-2".into(),
                address: "master-2.lab.internal".into(),
                port: 6443,
            },
        ],
        vrrp: Vrrp {
            instance: "kubeseed_api_v6".into(),
            router_id: 52,
            priority: 100,
            advert_interval_ms: 1000,
            unicast_source: ip("fd00:213::32"),
            unicast_peers: vec![ip("fd00:213::31"), ip("fd00:213::33")],
        },
        ca_pem: LB_CA_PEM.into(),
        programs: Programs::default_for(Proxy::Nginx),
        nginx_stream_module: Some("/usr/lib/nginx/modules/ngx_stream_module.so".into()),
    }
}

/// The only load-balancer host, nginx with nothing healthy behind it yet:
/// the placeholder upstream server, multicast adverts.
pub fn lb_nginx_alone() -> LoadBalancerInput {
    let mut input = lb_haproxy();
    input.proxy = Proxy::Nginx;
    input.programs = Programs::default_for(Proxy::Nginx);
    input.nginx_stream_module = Some("/usr/lib/nginx/modules/ngx_stream_module.so".into());
    input.backends.clear();
    input.vrrp.unicast_peers.clear();
    input
}

/// The load-balancer cases, every file of each.
pub fn lb_cases() -> Vec<Case> {
    [
        ("lb-haproxy", lb_haproxy()),
        ("lb-nginx-ipv6", lb_nginx_ipv6()),
        ("lb-nginx-alone", lb_nginx_alone()),
    ]
    .into_iter()
    .map(|(name, input)| Case {
        name,
        files: input.render().unwrap().all_files(),
    })
    .collect()
}

/// worker-1's routes to the masters' pod ranges, given out of order:
/// master-1's and master-2's IPv4 ranges, and master-2's IPv6 range (a
/// dual-stack node).
pub fn pod_routes_worker_1() -> PodRoutesInput {
    let route = |node: &str, cidr: &str, via: &str| PodRoute {
        node: node.into(),
        cidr: Cidr::parse(cidr).unwrap(),
        via: ip(via),
    };
    PodRoutesInput {
        routes: vec![
            route("master-2", "fd00:10:244:1::/64", "fd00:213::12"),
            route("master-2", "10.244.1.0/24", "10.213.0.12"),
            route("master-1", "10.244.0.0/24", "10.213.0.11"),
        ],
    }
}

/// The pod-routes case.
pub fn pod_routes_cases() -> Vec<Case> {
    vec![Case {
        name: "pod-routes",
        files: pod_routes_worker_1().render().unwrap(),
    }]
}

/// Whether the test runs as root (the program tests need namespaces).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next().map(|uid| uid == "0"))
        .unwrap_or(false)
}
