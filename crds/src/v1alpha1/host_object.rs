//! What every kind offers alike, so the operator and tools can treat the four
//! kinds as one.

use super::status::{CommonStatus, ObservedHostKey};
use super::{ApiLoadBalancer, ControlPlaneMember, EtcdMember, HostSpec, WorkerNode};

/// A kubeseed object: it names one or more hosts and carries a [`CommonStatus`].
pub trait HostObject {
    /// The status parts every kind shares, once the operator has written any.
    fn common_status(&self) -> Option<&CommonStatus>;
    /// The SSH addresses of the object's hosts, in spec order.
    fn host_addresses(&self) -> Vec<&str>;
}

/// A kind with a single `spec.host`: how to reach it and the host key the
/// operator recorded for it, if it has connected.
pub trait SingleHostObject: HostObject {
    /// Where the host is and how to log in.
    fn host(&self) -> &HostSpec;
    /// The key the host presented first (or its pin's fingerprint), once seen.
    fn recorded_host_key(&self) -> Option<&ObservedHostKey>;
}

/// The three kinds with a single `spec.host`.
macro_rules! single_host_object {
    ($($kind:ty),+) => {$(
        impl HostObject for $kind {
            fn common_status(&self) -> Option<&CommonStatus> {
                self.status.as_ref().map(|s| &s.common)
            }
            fn host_addresses(&self) -> Vec<&str> {
                vec![self.spec.host.address.as_str()]
            }
        }
        impl SingleHostObject for $kind {
            fn host(&self) -> &HostSpec {
                &self.spec.host
            }
            fn recorded_host_key(&self) -> Option<&ObservedHostKey> {
                self.status.as_ref().map(|s| &s.host_key)
            }
        }
    )+};
}

single_host_object!(ControlPlaneMember, EtcdMember, WorkerNode);

impl HostObject for ApiLoadBalancer {
    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|s| &s.common)
    }
    fn host_addresses(&self) -> Vec<&str> {
        self.spec
            .hosts
            .iter()
            .map(|h| h.host.address.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1alpha1::{ApiLoadBalancerSpec, HostSpec, LoadBalancerHost};

    fn host(address: &str) -> LoadBalancerHost {
        LoadBalancerHost {
            host: HostSpec {
                address: address.into(),
                ..HostSpec::default()
            },
            priority: None,
        }
    }

    #[test]
    fn a_load_balancer_names_every_host_in_spec_order() {
        let lb = ApiLoadBalancer::new(
            "api",
            ApiLoadBalancerSpec {
                hosts: vec![host("10.213.0.31"), host("10.213.0.32")],
                vip: "10.213.0.100/24".into(),
                interface: None,
                port: None,
                implementation: Default::default(),
                virtual_router_id: None,
                dns_names: vec![],
                backends: vec![],
            },
        );
        assert_eq!(lb.host_addresses(), ["10.213.0.31", "10.213.0.32"]);
        assert!(lb.common_status().is_none());
    }
}
