//! The admin kubeconfig's side of `use-endpoint`, kept pure: which cluster
//! entry the current context uses, a copy of the kubeconfig aimed at another
//! server (to probe it), and the smallest edit of the file's text that
//! changes that entry's `server:` and nothing else.

use anyhow::{Context as _, anyhow, bail};
use kube::config::Kubeconfig;
use serde_json::Value;

/// The cluster entry the kubeconfig's current context uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The current context's name.
    pub context: String,
    /// The name of the cluster entry it uses.
    pub cluster: String,
    /// That entry's `server:`.
    pub server: String,
}

/// The cluster entry `current-context` names, and its server.
pub fn target(kubeconfig: &Kubeconfig) -> anyhow::Result<Target> {
    let context = kubeconfig
        .current_context
        .clone()
        .filter(|c| !c.is_empty())
        .context("it sets no current-context")?;
    let cluster = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(|| anyhow!("its current-context {context:?} is not among its contexts"))?;
    let server = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            anyhow!("cluster {cluster:?} (of context {context:?}) has no server, or is missing")
        })?;
    Ok(Target {
        context,
        cluster,
        server,
    })
}

/// A copy of `kubeconfig` whose cluster entry `cluster` names `server`,
/// with the server's certificate checked in full: `insecure-skip-tls-verify`
/// and `tls-server-name` are dropped from the copy, so the certificate must
/// chain to the kubeconfig's CA and name the host in `server` itself.
pub fn probing(kubeconfig: &Kubeconfig, cluster: &str, server: &str) -> anyhow::Result<Kubeconfig> {
    let mut copy = kubeconfig.clone();
    let entry = copy
        .clusters
        .iter_mut()
        .find(|c| c.name == cluster)
        .and_then(|c| c.cluster.as_mut())
        .ok_or_else(|| anyhow!("the kubeconfig has no cluster entry {cluster:?}"))?;
    entry.server = Some(server.to_owned());
    entry.insecure_skip_tls_verify = None;
    entry.tls_server_name = None;
    Ok(copy)
}

/// The kubeconfig's text with cluster entry `cluster`'s server changed to
/// `server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    /// The new text.
    pub text: String,
    /// Whether only the server's characters changed (comments, order,
    /// quoting and layout kept); else the file was re-serialized.
    pub minimal: bool,
}

/// Changes the server of cluster entry `cluster` in the kubeconfig `text`.
///
/// Tries, in order, each place the old server's text occurs and keeps the
/// first whose replacement parses to exactly the expected document (the old
/// one with that one field changed); so a server string shared by another
/// entry, or occurring inside another value, is never touched. When no such
/// place exists (an escaped or folded scalar), the document is re-serialized
/// with the field changed: the same content, without comments (keys sorted).
pub fn set_server(text: &str, cluster: &str, server: &str) -> anyhow::Result<Edited> {
    let doc: Value = serde_saphyr::from_str(text).context("it is not a single YAML document")?;
    let mut expected = doc.clone();
    let entry = expected
        .get_mut("clusters")
        .and_then(Value::as_array_mut)
        .and_then(|clusters| {
            clusters
                .iter_mut()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(cluster))
        })
        .and_then(|c| c.get_mut("cluster"))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow!("it has no cluster entry {cluster:?}"))?;
    let old = entry
        .get("server")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("its cluster entry {cluster:?} has no server"))?;
    if old == server {
        return Ok(Edited {
            text: text.to_owned(),
            minimal: true,
        });
    }
    entry.insert("server".into(), server.into());

    if !old.is_empty() {
        for (at, _) in text.match_indices(old.as_str()) {
            let candidate = format!("{}{server}{}", &text[..at], &text[at + old.len()..]);
            if serde_saphyr::from_str::<Value>(&candidate).is_ok_and(|d| d == expected) {
                return Ok(Edited {
                    text: candidate,
                    minimal: true,
                });
            }
        }
    }
    let text = serde_saphyr::to_string(&expected).context("cannot write it back as YAML")?;
    Ok(Edited {
        text,
        minimal: false,
    })
}

/// Checks that `text` reads, as kube reads kubeconfigs, as naming `server`
/// for the current context: the last guard before the file is replaced.
pub fn check_edit(text: &str, want: &Target, server: &str) -> anyhow::Result<()> {
    let kubeconfig = Kubeconfig::from_yaml(text).context("the edited kubeconfig does not read")?;
    let got = target(&kubeconfig).context("the edited kubeconfig")?;
    if got.context != want.context || got.cluster != want.cluster || got.server != server {
        bail!(
            "the edited kubeconfig names {} (context {:?}, cluster {:?}) instead of {server} \
             (context {:?}, cluster {:?})",
            got.server,
            got.context,
            got.cluster,
            want.context,
            want.cluster
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout `bootstrap seed` writes (kubeseed_provision's renderer).
    fn seeded(server: &str) -> String {
        let issued = kubeseed_provision::pki::IssuedCert {
            cert_pem: "CERT".into(),
            key_pem: "KEY".into(),
        };
        kubeseed_provision::pki::render_kubeconfig(&kubeseed_provision::pki::KubeconfigSpec {
            cluster_name: "kubernetes",
            server,
            ca_pem: "CA",
            user_name: "kubernetes-admin",
            credentials: kubeseed_provision::pki::Credentials::ClientCert(&issued),
        })
        .unwrap()
    }

    const OLD: &str = "https://10.213.0.11:6443";
    const NEW: &str = "https://10.213.0.100:6443";

    #[test]
    fn the_target_is_the_current_contexts_cluster() {
        let kc = Kubeconfig::from_yaml(&seeded(OLD)).unwrap();
        let t = target(&kc).unwrap();
        assert_eq!(t.cluster, "kubernetes");
        assert_eq!(t.context, "kubernetes-admin@kubernetes");
        assert_eq!(t.server, OLD);
    }

    #[test]
    fn only_the_server_changes_in_a_seeded_kubeconfig() {
        let before = seeded(OLD);
        let edited = set_server(&before, "kubernetes", NEW).unwrap();
        assert!(edited.minimal);
        assert_eq!(edited.text, before.replace(OLD, NEW));
        assert_eq!(edited.text, seeded(NEW));
        let t = target(&Kubeconfig::from_yaml(&before).unwrap()).unwrap();
        check_edit(&edited.text, &t, NEW).unwrap();
        // Twice is the same as once.
        let again = set_server(&edited.text, "kubernetes", NEW).unwrap();
        assert_eq!(again.text, edited.text);
    }

    #[test]
    fn comments_quotes_and_other_entries_are_kept() {
        let before = format!(
            "# mine\napiVersion: v1\nkind: Config\nclusters:\n\
             - name: other\n  cluster:\n    server: \"{OLD}\"   # same server, other entry\n\
             - name: kubernetes\n  cluster:\n    server: \"{OLD}\"\n    certificate-authority-data: Q0E=\n\
             contexts:\n- name: admin\n  context: {{cluster: kubernetes, user: admin}}\n\
             current-context: admin\nusers:\n- name: admin\n  user: {{token: abc}}\n\
             preferences: {{}}\nx-note: \"{OLD}\"\n"
        );
        let edited = set_server(&before, "kubernetes", NEW).unwrap();
        assert!(edited.minimal);
        let changed: Vec<(&str, &str)> = before
            .lines()
            .zip(edited.text.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(
            changed,
            vec![(
                format!("    server: \"{OLD}\"").as_str(),
                format!("    server: \"{NEW}\"").as_str()
            )]
        );
        assert_eq!(before.lines().count(), edited.text.lines().count());
        let t = target(&Kubeconfig::from_yaml(&before).unwrap()).unwrap();
        check_edit(&edited.text, &t, NEW).unwrap();
    }

    #[test]
    fn json_kubeconfigs_are_edited_in_place_too() {
        let before = format!(
            r#"{{"apiVersion":"v1","kind":"Config","clusters":[{{"name":"c","cluster":{{"server":"{OLD}"}}}}],"contexts":[{{"name":"c","context":{{"cluster":"c","user":"u"}}}}],"current-context":"c","users":[{{"name":"u","user":{{"token":"t"}}}}]}}"#
        );
        let edited = set_server(&before, "c", "https://[fd00::100]:8443").unwrap();
        assert!(edited.minimal);
        assert_eq!(edited.text, before.replace(OLD, "https://[fd00::100]:8443"));
    }

    #[test]
    fn an_escaped_server_falls_back_to_a_faithful_rewrite() {
        // JSON's `\/` is a valid escape of `/`: the text never contains the
        // server as written, so the document is re-serialized.
        let before = r#"{"clusters":[{"name":"c","cluster":{"server":"https:\/\/10.213.0.11:6443","certificate-authority-data":"Q0E="}}],"contexts":[{"name":"c","context":{"cluster":"c"}}],"current-context":"c","zz":1,"aa":2}"#;
        let edited = set_server(before, "c", NEW).unwrap();
        assert!(!edited.minimal);
        let doc: Value = serde_saphyr::from_str(&edited.text).unwrap();
        assert_eq!(doc["clusters"][0]["cluster"]["server"].as_str(), Some(NEW));
        assert_eq!(
            doc["clusters"][0]["cluster"]["certificate-authority-data"].as_str(),
            Some("Q0E=")
        );
        // Every other key survives (in sorted order).
        assert!(
            edited.text.contains("zz: 1") && edited.text.contains("aa: 2"),
            "{}",
            edited.text
        );
    }

    #[test]
    fn a_missing_entry_is_an_error() {
        let err = set_server(&seeded(OLD), "nope", NEW).unwrap_err();
        assert!(
            err.to_string().contains("no cluster entry \"nope\""),
            "{err}"
        );
        let no_context = "clusters: []\ncontexts: []\n";
        let err = target(&Kubeconfig::from_yaml(no_context).unwrap()).unwrap_err();
        assert!(err.to_string().contains("current-context"), "{err}");
    }

    #[test]
    fn the_probe_copy_verifies_in_full() {
        let text = seeded(OLD).replace(
            "    server:",
            "    insecure-skip-tls-verify: true\n    tls-server-name: kubernetes\n    server:",
        );
        let kc = Kubeconfig::from_yaml(&text).unwrap();
        let copy = probing(&kc, "kubernetes", NEW).unwrap();
        let cluster = copy.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some(NEW));
        assert_eq!(cluster.insecure_skip_tls_verify, None);
        assert_eq!(cluster.tls_server_name, None);
        assert!(cluster.certificate_authority_data.is_some());
        // The original is untouched.
        assert_eq!(
            kc.clusters[0].cluster.as_ref().unwrap().server.as_deref(),
            Some(OLD)
        );
    }
}
