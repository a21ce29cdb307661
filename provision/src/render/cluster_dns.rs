//! Cluster DNS: CoreDNS as kubeadm deploys it (ServiceAccount, RBAC,
//! Corefile, Deployment, the `kube-dns` Service at the cluster's DNS
//! address), with the image from the bundle, imported into every node's
//! containerd: `imagePullPolicy: Never`, since nothing is pulled.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::cluster::ClusterSpec;

use super::Component;
use super::error::{ClusterContext, RenderError, Result};
use super::escape;

const COMPONENT: Component = Component::ClusterDns;

/// Where names outside the cluster go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// The nameservers in the node's `/etc/resolv.conf` (kubeadm's default).
    ResolvConf,
    /// None: the host knows no nameserver (CoreDNS's `forward` refuses to
    /// start without one), so only cluster names resolve.
    None,
}

/// What the cluster DNS manifests are rendered from.
#[derive(Debug, Clone)]
pub struct ClusterDnsInput<'a> {
    /// The cluster: its domain, DNS service address and pod range.
    pub spec: &'a ClusterSpec,
    /// The CoreDNS image, as tagged in the bundle's archive.
    pub image: &'a str,
    /// Where other names go.
    pub upstream: Upstream,
    /// Replicas (kubeadm: 2; they prefer different nodes).
    pub replicas: u32,
}

impl ClusterDnsInput<'_> {
    /// The Corefile.
    pub fn corefile(&self) -> Result<String> {
        let domain = &self.spec.cluster_domain;
        if domain.is_empty() || !domain.split('.').all(is_label) {
            return Err(RenderError::input(
                COMPONENT,
                "cluster domain",
                format!("{domain:?} is not a DNS domain such as cluster.local"),
            ));
        }
        let forward = match self.upstream {
            Upstream::ResolvConf => {
                "    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n"
            }
            Upstream::None => "",
        };
        Ok(format!(
            ".:53 {{
    errors
    health {{
       lameduck 5s
    }}
    ready
    kubernetes {domain} in-addr.arpa ip6.arpa {{
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }}
    prometheus :9153
{forward}    cache 30
    loop
    reload
    loadbalance
}}
"
        ))
    }

    /// Every object, as one YAML stream for `kubectl apply`.
    pub fn manifests(&self) -> Result<String> {
        if self.image.is_empty() || self.image.chars().any(char::is_whitespace) {
            return Err(RenderError::input(
                COMPONENT,
                "image",
                format!("{:?} is not an image reference", self.image),
            ));
        }
        let dns_ip: IpAddr = self.spec.dns_service_ip().for_component(COMPONENT)?;
        let corefile = self.corefile()?;
        let labels = json!({"k8s-app": "kube-dns"});
        let objects: Vec<Value> = vec![
            json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "coredns", "namespace": "kube-system"},
            }),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "system:coredns"},
                "rules": [
                    {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
                    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
                ],
            }),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "system:coredns"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
                "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}],
            }),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "coredns", "namespace": "kube-system"},
                "data": {"Corefile": corefile},
            }),
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
                "spec": {
                    "replicas": self.replicas,
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "priorityClassName": "system-cluster-critical",
                            "serviceAccountName": "coredns",
                            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                                "weight": 100,
                                "podAffinityTerm": {
                                    "labelSelector": {"matchLabels": labels},
                                    "topologyKey": "kubernetes.io/hostname",
                                },
                            }]}},
                            "tolerations": [
                                {"key": "CriticalAddonsOnly", "operator": "Exists"},
                                {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                            ],
                            "nodeSelector": {"kubernetes.io/os": "linux"},
                            "dnsPolicy": "Default",
                            "containers": [{
                                "name": "coredns",
                                "image": self.image,
                                "imagePullPolicy": "Never",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "resources": {
                                    "limits": {"memory": "170Mi"},
                                    "requests": {"cpu": "100m", "memory": "70Mi"},
                                },
                                "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": true}],
                                "ports": [
                                    {"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                    {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                                    {"containerPort": 9153, "name": "metrics", "protocol": "TCP"},
                                ],
                                "securityContext": {
                                    "allowPrivilegeEscalation": false,
                                    "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                                    "readOnlyRootFilesystem": true,
                                    "runAsNonRoot": true,
                                    "runAsUser": 65532,
                                    "runAsGroup": 65532,
                                },
                                "livenessProbe": {
                                    "httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                                    "initialDelaySeconds": 60, "timeoutSeconds": 5,
                                    "successThreshold": 1, "failureThreshold": 5,
                                },
                                "readinessProbe": {
                                    "httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"},
                                },
                            }],
                            "volumes": [{"name": "config-volume", "configMap": {
                                "name": "coredns",
                                "items": [{"key": "Corefile", "path": "Corefile"}],
                            }}],
                        },
                    },
                },
            }),
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {
                    "name": "kube-dns", "namespace": "kube-system",
                    "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
                    "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
                },
                "spec": {
                    "selector": labels,
                    "clusterIP": dns_ip.to_string(),
                    "ports": [
                        {"name": "dns", "port": 53, "protocol": "UDP"},
                        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                        {"name": "metrics", "port": 9153, "protocol": "TCP"},
                    ],
                },
            }),
        ];
        let mut docs = Vec::with_capacity(objects.len());
        for object in &objects {
            docs.push(
                escape::yaml(object).map_err(|reason| RenderError::Serialize {
                    component: COMPONENT,
                    what: "cluster DNS manifests",
                    reason,
                })?,
            );
        }
        Ok(docs.join("---\n"))
    }
}

fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ClusterSpec, Member};

    fn spec() -> ClusterSpec {
        ClusterSpec::stacked(Member::new("master-1", "10.213.0.11".parse().unwrap()))
    }

    #[test]
    fn the_service_takes_the_clusters_dns_address() {
        let spec = spec();
        let input = ClusterDnsInput {
            spec: &spec,
            image: "localhost/kubeseed/coredns:v1.14.7",
            upstream: Upstream::ResolvConf,
            replicas: 2,
        };
        let text = input.manifests().unwrap();
        assert!(text.contains("clusterIP: \"10.96.0.10\""), "{text}");
        assert!(text.contains("imagePullPolicy: Never"));
        assert!(text.contains("forward . /etc/resolv.conf"));
        assert_eq!(text.matches("---\n").count(), 5);
    }

    #[test]
    fn without_upstream_there_is_no_forward() {
        let spec = spec();
        let input = ClusterDnsInput {
            spec: &spec,
            image: "x:1",
            upstream: Upstream::None,
            replicas: 1,
        };
        let corefile = input.corefile().unwrap();
        assert!(!corefile.contains("forward"));
        assert!(corefile.contains("kubernetes cluster.local in-addr.arpa ip6.arpa"));
    }

    #[test]
    fn a_bad_domain_or_image_is_refused() {
        let mut spec = spec();
        spec.cluster_domain = "Cluster Local".into();
        let input = ClusterDnsInput {
            spec: &spec,
            image: "x:1",
            upstream: Upstream::None,
            replicas: 1,
        };
        assert!(input.corefile().is_err());
        let spec = self::spec();
        let input = ClusterDnsInput {
            spec: &spec,
            image: "",
            upstream: Upstream::None,
            replicas: 1,
        };
        assert!(input.manifests().is_err());
    }
}
