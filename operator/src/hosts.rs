//! Reaching a member's host over SSH from its `spec.host`: the key from the
//! Secret it names, and the host key it must present — pinned in the spec,
//! else the one recorded in its status, else accepted on first sight and
//! recorded by the caller before any command runs.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use kubeseed_crds::v1alpha1::{HostSpec, ObservedHostKey, SecretRef, SingleHostObject};
use kubeseed_provision::ssh::{
    Auth, ConnectionKeys, HostKey, HostKeyPolicy, Session, SshError, SshTarget,
};

use crate::context::Context;
use crate::error::{Error, Result};

/// The Secret's optional passphrase entry.
const PASSPHRASE_KEY: &str = "passphrase";

/// Connects to the host `spec` describes. `recorded` is what the status
/// already holds; the returned keys say what to record (see [`to_record`]).
pub async fn connect(
    ctx: &Context,
    spec: &HostSpec,
    recorded: &ObservedHostKey,
) -> Result<(Session, ConnectionKeys)> {
    let target = target(ctx, spec, recorded).await?;
    Ok(Session::connect(&target, &ctx.ssh_limits).await?)
}

/// [`connect`] to the host of `obj`, holding it to the key on its record.
pub async fn connect_to(
    ctx: &Context,
    obj: &(impl SingleHostObject + ?Sized),
) -> Result<(Session, ConnectionKeys)> {
    let recorded = obj.recorded_host_key().cloned().unwrap_or_default();
    connect(ctx, obj.host(), &recorded).await
}

/// The SSH target, with every key read and every policy chosen.
pub async fn target(
    ctx: &Context,
    spec: &HostSpec,
    recorded: &ObservedHostKey,
) -> Result<SshTarget> {
    let user = spec.user.clone().unwrap_or_else(|| "root".to_owned());
    let host_auth = auth(ctx, &spec.ssh_key_secret_ref).await?;
    let host_policy = policy(
        spec.host_key.as_deref(),
        recorded.observed_host_key.as_deref(),
    )?;
    let mut target = SshTarget::new(spec.address.clone(), user.clone(), host_auth, host_policy)
        .with_port(spec.port());
    if let Some(b) = &spec.bastion {
        let secret = b
            .ssh_key_secret_ref
            .as_ref()
            .unwrap_or(&spec.ssh_key_secret_ref);
        let bastion_policy = policy(
            b.host_key.as_deref(),
            recorded.observed_bastion_host_key.as_deref(),
        )?;
        let bastion = SshTarget::new(
            b.address.clone(),
            b.user.clone().unwrap_or(user),
            auth(ctx, secret).await?,
            bastion_policy,
        )
        .with_port(b.port());
        target = target.via(bastion);
    }
    Ok(target)
}

/// The host-key policy: the spec's pin wins, then the recorded key; a host
/// with neither is seen for the first time.
fn policy(pinned: Option<&str>, recorded: Option<&str>) -> Result<HostKeyPolicy> {
    match pinned.or(recorded) {
        Some(line) => Ok(HostKeyPolicy::Pinned(HostKey::parse(line)?)),
        None => Ok(HostKeyPolicy::FirstSeen),
    }
}

/// Reads a `kubernetes.io/ssh-auth` Secret; only the operator's namespace
/// is readable, and another namespace is refused with that explanation.
async fn auth(ctx: &Context, secret: &SecretRef) -> Result<Auth> {
    let namespace = secret.namespace.as_deref().unwrap_or(&ctx.namespace);
    let origin = format!("Secret {namespace}/{}", secret.name);
    if namespace != ctx.namespace {
        return Err(Error::Ssh(SshError::InvalidKey {
            source_name: origin,
            reason: format!(
                "the operator reads Secrets only in its own namespace {}: create the key there",
                ctx.namespace
            ),
        }));
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let found = api.get_opt(&secret.name).await?.ok_or_else(|| {
        Error::Ssh(SshError::InvalidKey {
            source_name: origin.clone(),
            reason: "it does not exist; create it with `kubectl -n NAMESPACE create secret generic NAME --type=kubernetes.io/ssh-auth --from-file=ssh-privatekey=PATH`".into(),
        })
    })?;
    let data = found.data.unwrap_or_default();
    let passphrase = data
        .get(PASSPHRASE_KEY)
        .map(|p| String::from_utf8_lossy(&p.0).trim_end().to_owned());
    Ok(Auth::from_ssh_auth_secret(
        data.iter().map(|(k, v)| (k.as_str(), v.0.as_slice())),
        origin,
        passphrase,
    )?)
}

/// What the status should hold after a connection: the fingerprints always,
/// and each key seen for the first time. `None` when it already holds it.
pub fn to_record(keys: &ConnectionKeys, recorded: &ObservedHostKey) -> Option<ObservedHostKey> {
    let mut next = recorded.clone();
    next.host_key_fingerprint = Some(keys.host.key.fingerprint());
    if keys.host.first_seen {
        next.observed_host_key = Some(keys.host.key.to_openssh());
    }
    if let Some(b) = keys.bastions.first() {
        next.bastion_host_key_fingerprint = Some(b.key.fingerprint());
        if b.first_seen {
            next.observed_bastion_host_key = Some(b.key.to_openssh());
        }
    }
    (next != *recorded).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeseed_provision::ssh::ObservedHostKey as Seen;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    fn seen(first: bool) -> ConnectionKeys {
        ConnectionKeys {
            host: Seen {
                key: HostKey::parse(KEY_A).unwrap(),
                first_seen: first,
            },
            bastions: vec![],
        }
    }

    #[test]
    fn a_pin_wins_over_the_recorded_key_and_nothing_means_first_seen() {
        assert!(matches!(
            policy(Some(KEY_A), None).unwrap(),
            HostKeyPolicy::Pinned(_)
        ));
        assert!(matches!(
            policy(None, Some(KEY_A)).unwrap(),
            HostKeyPolicy::Pinned(_)
        ));
        assert!(matches!(
            policy(None, None).unwrap(),
            HostKeyPolicy::FirstSeen
        ));
        assert!(policy(Some("ssh-ed25519 not-base64"), None).is_err());
    }

    #[test]
    fn a_first_seen_key_is_recorded_once() {
        let first = to_record(&seen(true), &ObservedHostKey::default()).unwrap();
        assert_eq!(first.observed_host_key.as_deref(), Some(KEY_A));
        assert!(first.host_key_fingerprint.unwrap().starts_with("SHA256:"));
        let again = to_record(
            &seen(false),
            &to_record(&seen(true), &Default::default()).unwrap(),
        );
        assert_eq!(again, None, "nothing new to record");
    }
}
