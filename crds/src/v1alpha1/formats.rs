//! The formats the API server enforces on fields that end up in a config
//! file, a unit file, a certificate or a command on a host: one place that
//! says what each kind of value may contain, as CEL rules and schema
//! fragments the types refer to.
//!
//! Each rule accepts what the program that consumes the value accepts (the
//! renderers in `kubeseed-provision`: flag names and values, node labels and
//! taints, subject alternative names, SSH targets), so `kubectl apply`
//! refuses a value the operator would refuse later, or worse, write into a
//! file. Regular expressions use character classes (`[.]`) instead of
//! backslash escapes so the rules read the same in Rust, YAML and CEL.
//!
//! Every string a rule reads has a `maxLength` (and every list or map a
//! `maxItems` / `maxProperties`): the API server estimates a rule's cost
//! from those bounds and refuses a CRD whose rules could be too expensive.

use kube::core::Rule;
use schemars::Schema;
use schemars::generate::SchemaGenerator;
use serde_json::json;

/// One DNS label, either case (RFC 1123): 1–63 letters, digits and `-`,
/// not starting or ending with `-`.
const DNS_LABEL: &str = "[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?";

/// A lower-case DNS label (the prefix of a label key).
const LOWER_DNS_LABEL: &str = "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?";

/// The name part of a label key, or a non-empty label value: 1–63
/// letters, digits, `-`, `_` and `.`, a letter or digit at both ends.
const LABEL_NAME: &str = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";

fn dns_name_regex() -> String {
    format!("^{DNS_LABEL}([.]{DNS_LABEL})*$")
}

/// An IP address, or a DNS name that is not all digits and dots (so
/// `1.2.3.4.5` is neither).
fn ip_or_dns_name(var: &str) -> String {
    format!(
        "isIP({var}) || ({var}.matches('{}') && !{var}.matches('^[0-9.]+$'))",
        dns_name_regex()
    )
}

/// `host.address`, a bastion's `address`, a backend's `address`.
pub(crate) fn address() -> Rule {
    Rule::new(ip_or_dns_name("self"))
        .message("must be an IP address or a DNS name, such as 10.213.0.12 or master-1.example.com")
}

/// A bastion's address: the same, but empty is left to the bastion's own
/// rule ("a bastion needs an address").
pub(crate) fn bastion_address() -> Rule {
    Rule::new(format!("self == '' || {}", ip_or_dns_name("self")))
        .message("must be an IP address or a DNS name, such as 10.213.0.12 or master-1.example.com")
}

/// `advertiseAddress`: one IP address, nothing else (`isIP` refuses
/// `deadbeef`, `...`, `1.2.3.4.5`, zones and IPv4-mapped IPv6).
pub(crate) fn ip_address(example: &str) -> Rule {
    Rule::new("isIP(self)").message(format!("must be an IP address, such as {example}").as_str())
}

/// A host key pin in `authorized_keys` form (what `HostKey::parse` reads).
pub(crate) fn host_key() -> Rule {
    Rule::new(
        "self.matches('^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) [A-Za-z0-9+/=]+( .*)?$')",
    )
    .message(
        "must be an SSH public key such as 'ssh-ed25519 AAAA...' (the contents of the host's /etc/ssh/ssh_host_*_key.pub)",
    )
}

/// A login name as `useradd` makes them and the SSH engine accepts (it
/// becomes part of commands and sudo rules): letters, digits, `_`, `.`
/// and `-`, not starting with a digit, `.` or `-`.
pub(crate) fn ssh_user() -> Rule {
    Rule::new("self.matches('^[A-Za-z_][-A-Za-z0-9_.]*$')").message(
        "must be a user name of letters, digits, '_', '.' and '-', starting with a letter or '_', such as debian",
    )
}

/// A network interface name as keepalived's config takes it (Linux allows
/// at most 15 bytes; no whitespace, `/`, `:`, braces or quotes).
pub(crate) fn interface() -> Rule {
    Rule::new("self.matches('^[A-Za-z0-9][-A-Za-z0-9_.]{0,14}$')").message(
        "must be a network interface name of at most 15 letters, digits, '_', '.' and '-', such as eth0",
    )
}

/// The part of every `dataDir` rule that says what a path may look like:
/// absolute, components of letters, digits, `_`, `-` and `.` that do not
/// start with `.` or `-` (so no `.`, `..` or options), no `//`, no trailing `/`.
pub(crate) fn absolute_path() -> Rule {
    Rule::new("self.matches('^(/[A-Za-z0-9_][-A-Za-z0-9_.]*)+$')").message(
        "must be an absolute path such as /var/lib/etcd, of parts made of letters, digits, '_', '-' and '.' that start with a letter, digit or '_' (no '.', '..', '//' or trailing '/')",
    )
}

/// A directory the operator may fill and, when the member is deleted,
/// remove: never a system directory or one of the trees it holds.
pub(crate) fn data_dir_outside_system() -> Rule {
    Rule::new(
        "!self.matches('^/[^/]*$') \
         && !self.matches('^/(bin|boot|dev|etc|lib|lib32|lib64|libx32|proc|run|sbin|sys|usr)(/|$)') \
         && !self.matches('^/(home|var)/[^/]+$') \
         && (!self.matches('^/var/lib/[^/]+(/|$)') || self.matches('^/var/lib/[^/]*etcd[^/]*(/|$)'))",
    )
    .message(
        "must not be a system directory or inside one: not / or a top-level directory, nothing under /etc, /usr, /boot, /proc, /sys, /dev, /run, /bin, /sbin or /lib*, not /var/* or /home/*, and under /var/lib only a directory named for etcd, such as /var/lib/etcd",
    )
}

/// A node name as the PKI and the kubelet take it: a lower-case DNS-1123
/// subdomain (it goes into certificate subjects and `--hostname-override`).
pub(crate) fn node_name() -> Rule {
    Rule::new(format!(
        "self.matches('^{LOWER_DNS_LABEL}([.]{LOWER_DNS_LABEL})*$')"
    ))
    .message("must be a lower-case DNS name such as worker-1 (letters, digits, '-' and '.')")
}

/// A subject alternative name as the PKI takes it: an IP address or a DNS
/// name, optionally with `*.` as its whole leftmost label.
fn san_rule(var: &str) -> String {
    format!(
        "isIP({var}) || ({var}.matches('^([*][.])?{DNS_LABEL}([.]{DNS_LABEL})*$') && !{var}.matches('^[0-9.]+$'))"
    )
}

const SAN_MESSAGE: &str = "must be an IP address or a DNS name (optionally starting with '*.'), such as 10.213.0.100 or api.example.com";

/// A DNS name that resolves to the VIP (it goes into certificates too).
fn vip_dns_name_rule(var: &str) -> String {
    format!(
        "{var}.matches('^([*][.])?{DNS_LABEL}([.]{DNS_LABEL})*$') && !{var}.matches('^[0-9.*]+$')"
    )
}

const VIP_DNS_NAME_MESSAGE: &str =
    "must be a DNS name (optionally starting with '*.'), such as api.cluster.example.com";

/// A flag name as the renderers accept it: the one spelling of every etcd
/// and Kubernetes flag, lower case, digits and `-`, not starting with `-`.
const FLAG_NAME_RULE: &str = "self.all(k, k.matches('^[a-z0-9][-a-z0-9]*$'))";
const FLAG_NAME_MESSAGE: &str = "flag names must be lower-case letters, digits and '-', without the leading '--', such as audit-log-maxage";

/// A flag value: anything a unit file can hold, which is no control
/// character (a line break would start a new unit setting).
const FLAG_VALUE_RULE: &str = "!self.matches('[[:cntrl:]\\u0080-\\u009f]')";
const FLAG_VALUE_MESSAGE: &str =
    "flag values must not contain line breaks, tabs or other control characters";

/// A label or taint key: an optional lower-case DNS-subdomain prefix and
/// `/`, then the name.
fn label_key_regex() -> String {
    format!("^({LOWER_DNS_LABEL}([.]{LOWER_DNS_LABEL})*/)?{LABEL_NAME}$")
}

fn label_value_regex() -> String {
    format!("^({LABEL_NAME})?$")
}

const LABEL_KEY_MESSAGE: &str = "label keys must be an optional DNS-subdomain prefix and '/' followed by a name of 1-63 letters, digits, '-', '_' and '.', such as topology.kubernetes.io/zone";
const LABEL_VALUE_MESSAGE: &str = "label values must be empty or 1-63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
const TAINT_MESSAGE: &str =
    "a taint's key must be a label key and its value a label value, such as dedicated=batch";

/// Schema of `extraArgs` and `kubeProxyExtraArgs`: at most 64 flags, names
/// and values as the renderers accept them.
pub(crate) fn extra_args(_: &mut SchemaGenerator) -> Schema {
    schema(json!({
        "type": "object",
        "maxProperties": 64,
        "additionalProperties": {
            "type": "string",
            "maxLength": 4096,
            "x-kubernetes-validations": [{"rule": FLAG_VALUE_RULE, "message": FLAG_VALUE_MESSAGE}],
        },
        "x-kubernetes-validations": [{"rule": FLAG_NAME_RULE, "message": FLAG_NAME_MESSAGE}],
    }))
}

/// Schema of a node's `labels`.
pub(crate) fn labels(_: &mut SchemaGenerator) -> Schema {
    schema(json!({
        "type": "object",
        "maxProperties": 64,
        "additionalProperties": {
            "type": "string",
            "maxLength": 63,
            "x-kubernetes-validations": [{
                "rule": format!("self.matches('{}')", label_value_regex()),
                "message": LABEL_VALUE_MESSAGE,
            }],
        },
        "x-kubernetes-validations": [{
            "rule": format!("self.all(k, size(k) <= 317 && k.matches('{}'))", label_key_regex()),
            "message": LABEL_KEY_MESSAGE,
        }],
    }))
}

/// Schema of a node's `taints`: key, value and effect as the kubelet
/// registers them (the Rust type stays `k8s_openapi`'s `Taint`).
pub(crate) fn taints(_: &mut SchemaGenerator) -> Schema {
    schema(json!({
        "type": "array",
        "nullable": true,
        "maxItems": 32,
        "items": {
            "description": "A taint the node registers with: pods that do not tolerate it get its effect.",
            "type": "object",
            "required": ["key", "effect"],
            "properties": {
                "key": {
                    "description": "The taint's key, a label key such as `dedicated`.",
                    "type": "string",
                    "maxLength": 317,
                },
                "value": {
                    "description": "The taint's value, a label value (may be empty).",
                    "type": "string",
                    "maxLength": 63,
                },
                "effect": {
                    "description": "What the taint does to pods that do not tolerate it.",
                    "type": "string",
                    "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"],
                },
                "timeAdded": {
                    "description": "Not used at registration; accepted for the shape of a Node's taint.",
                    "type": "string",
                    "format": "date-time",
                },
            },
            "x-kubernetes-validations": [{
                "rule": format!(
                    "self.key.matches('{}') && (!has(self.value) || self.value.matches('{}'))",
                    label_key_regex(),
                    label_value_regex()
                ),
                "message": TAINT_MESSAGE,
            }],
        },
    }))
}

/// Schema of `extraSANs`: at most 64 names, each an IP or a DNS name.
pub(crate) fn extra_sans(_: &mut SchemaGenerator) -> Schema {
    schema(json!({
        "type": "array",
        "maxItems": 64,
        "items": {
            "type": "string",
            "maxLength": 253,
            "x-kubernetes-validations": [{"rule": san_rule("self"), "message": SAN_MESSAGE}],
        },
    }))
}

/// Schema of an `ApiLoadBalancer`'s `dnsNames`.
pub(crate) fn vip_dns_names(_: &mut SchemaGenerator) -> Schema {
    schema(json!({
        "type": "array",
        "maxItems": 16,
        "items": {
            "type": "string",
            "maxLength": 253,
            "x-kubernetes-validations": [{"rule": vip_dns_name_rule("self"), "message": VIP_DNS_NAME_MESSAGE}],
        },
    }))
}

fn schema(value: serde_json::Value) -> Schema {
    // Every value above is a JSON object, which is always a valid schema.
    Schema::try_from(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_have_no_backslashes_to_mangle() {
        // CEL, YAML and Rust all treat backslashes differently; the rules
        // avoid them except in FLAG_VALUE_RULE's \u escapes, which CEL
        // turns into the characters themselves.
        for rule in [
            address().rule,
            host_key().rule,
            ssh_user().rule,
            interface().rule,
            absolute_path().rule,
            data_dir_outside_system().rule,
            san_rule("self"),
            label_key_regex(),
        ] {
            assert!(!rule.contains('\\'), "{rule}");
        }
    }

    #[test]
    fn map_schemas_bound_their_size() {
        let mut generator = SchemaGenerator::default();
        for s in [
            extra_args(&mut generator),
            labels(&mut generator),
            taints(&mut generator),
        ] {
            let v = s.as_value();
            assert!(
                v.get("maxProperties").is_some() || v.get("maxItems").is_some(),
                "{v}"
            );
        }
    }
}
