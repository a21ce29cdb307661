//! `bootstrap seed HOST`: the first master, its etcd, and the operator.
//!
//! The steps, each printed as it runs:
//!
//! 1. the workstation's state directory: the cluster's record and CAs,
//!    loaded if they exist (never a second CA for an existing cluster);
//! 2. SSH to the host (its key pinned, known, or recorded on first sight);
//! 3. preflight, as a table; a failed check stops here, nothing changed;
//! 4. the bundle: every artifact verified by sha256 before anything is
//!    installed;
//! 5. the certificates this host needs (those it already holds and that are
//!    still right are kept);
//! 6. the plan: `kubeseed_provision::plans::control_plane` plus what only a
//!    seed does (RBAC bootstrap, the operator, the member records), run task
//!    by task with check-then-apply, so a second run changes nothing and a
//!    killed run is finished by running it again;
//! 7. the admin kubeconfig, written locally (0600).

mod members;
mod operator;
mod target;

pub use operator::{CLUSTER_CONFIG_MAP, NAMESPACE, RECORD_KEY};

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, bail};

use kubeseed_provision::bundle::{Bundle, OpenOptions, Sha256Digest, Source};
use kubeseed_provision::cluster::ClusterSpec;
use kubeseed_provision::files::HostFiles;
use kubeseed_provision::pki::{ClusterCas, keep_valid, profiles};
use kubeseed_provision::plans::{self, ControlPlaneInput, EtcdPlan, KubectlApply, MasterOrdinal};
use kubeseed_provision::preflight::{self, ClusterIdentity, Expectations};
use kubeseed_provision::render::{EncryptionConfig, EncryptionKey, InitialClusterState};
use kubeseed_provision::ssh::{Limits, Session};
use kubeseed_provision::tasks::{Mode, Runner, Task};

use crate::cli::SeedArgs;
use crate::progress::{Printer, summary};
use crate::state::{ClusterRecord, SeedRecord, StateDir};

/// Runs `bootstrap seed`.
pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let state_path = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => StateDir::default_for(&args.cluster_name)?,
    };
    let state = StateDir::open(&state_path)?;
    let existing = state.record()?;
    if let Some(record) = &existing
        && (record.seed.address != args.host || record.seed.port != args.port)
    {
        bail!(
            "{} belongs to cluster {:?}, seeded on {}:{}; a cluster has one seed: to add this host \
             to it apply a ControlPlaneMember, or give another --cluster-name / --state-dir for a new cluster",
            state.path().display(),
            record.name,
            record.seed.address,
            record.seed.port
        );
    }

    // ---- reach the host ------------------------------------------------------
    let target = target::ssh_target(&args, &state)?;
    eprintln!("connecting to {} as {}", target.host(), target.user);
    let (session, keys) = Session::connect(&target, &Limits::default())
        .await
        .with_context(|| format!("cannot reach {} over SSH", target.host()))?;
    // `bootstrap seed` connects without a bastion: the host's key is the only one.
    let observed = keys.host;
    if !args.dry_run {
        target::record_first_seen(&state, &args, &observed)?;
    }

    // ---- preflight -------------------------------------------------------------
    let facts = preflight::gather(&session)
        .await
        .context("cannot run the preflight checks")?;
    let Some(system) = facts.system.as_ref() else {
        // Nothing but the privileges could be learnt: say why, with the fix.
        let report = preflight::evaluate(&facts, &Expectations::control_plane());
        eprintln!("\npreflight of {}:\n{}", session.host(), report.table());
        bail!(
            "preflight failed on {}: {}; nothing was changed on the host",
            session.host(),
            report.summary()
        );
    };
    let node_name = match (&args.node_name, &existing) {
        (Some(n), _) => n.clone(),
        (None, Some(r)) => r.seed.node_name.clone(),
        (None, None) => system.hostname.to_ascii_lowercase(),
    };
    let advertise = advertise_address(&args, existing.as_ref())?;

    let bundle = open_bundle(&args, &state).await?;
    let record = match existing.clone() {
        Some(r) => r,
        None => {
            let mut r = ClusterRecord::new(
                &args.cluster_name,
                SeedRecord {
                    address: args.host.clone(),
                    port: args.port,
                    user: args.user.clone(),
                    node_name: node_name.clone(),
                    advertise_address: advertise,
                },
            );
            r.kubernetes_version = bundle.versions().kubernetes().to_owned();
            r.etcd_version = bundle.versions().etcd().to_owned();
            r.pod_cidr = args.pod_cidr.clone();
            r.pod_network = args.pod_network.into();
            r.service_cidr = args.service_cidr.clone();
            r
        }
    };
    if bundle.versions().kubernetes() != record.kubernetes_version {
        bail!(
            "the bundle has Kubernetes {} but cluster {:?} runs {}: give the bundle it was seeded with",
            bundle.versions().kubernetes(),
            record.name,
            record.kubernetes_version
        );
    }
    let spec = record.spec();
    spec.check().context("the cluster description is invalid")?;

    let cas = if args.dry_run && !state.has_cas() {
        ClusterCas::generate(spec.key_algorithm, &spec.validity)?
    } else {
        state.cas(existing.is_some())?.0
    };
    let mut expectations = Expectations::control_plane().in_cluster(ClusterIdentity {
        cluster_id: record.id.clone(),
        ca_fingerprint: Some(preflight::certificate_fingerprint(
            cas.cluster.cert_pem().as_bytes(),
        )),
        etcd_ca_fingerprint: Some(preflight::certificate_fingerprint(
            cas.etcd.cert_pem().as_bytes(),
        )),
    });
    expectations.advertise_address = Some(advertise);
    let report = preflight::evaluate(&facts, &expectations);
    eprintln!("\npreflight of {}:\n{}", session.host(), report.table());
    if !report.is_ok() {
        bail!(
            "preflight failed on {}: {}; nothing was changed on the host",
            session.host(),
            report.summary()
        );
    }

    // ---- what the host gets --------------------------------------------------------
    let verified = bundle
        .verify_all()
        .await
        .context("the bundle failed verification; nothing was installed")?;
    let bundle_on_host = plans::bundle_on_host(&bundle, &verified)?;
    let node = plans::master_node(
        &node_name,
        advertise,
        facts
            .host_profile()
            .context("preflight learned nothing about the host")?,
    );
    let pki = plans::master_pki(&session, &cas, &spec, &node_name, MasterOrdinal::First).await?;
    let encryption_key = if args.dry_run && !state.has_encryption_key() {
        rand::random()
    } else {
        state.encryption_key()?
    };
    let encryption = EncryptionConfig::new(
        EncryptionKey::new("key1", &encryption_key).context("the encryption key")?,
    );
    let member = spec.etcd_member(&node_name)?.clone();
    let super_admin = plans::ApiAccess::local(plans::SUPER_ADMIN_CONF, record.endpoint_port);
    let mut after_api: Vec<Box<dyn Task>> = vec![Box::new(KubectlApply::new(
        "rbac/cluster-admins",
        "bind kubeadm:cluster-admins (with super-admin.conf, as kubeadm init does)",
        super_admin.clone(),
        profiles::CLUSTER_ADMINS_BINDING,
    ))];
    let upstream = plans::upstream_of(&session)
        .await
        .context("cannot read the host's /etc/resolv.conf")?;
    if upstream == kubeseed_provision::render::Upstream::None {
        eprintln!(
            "note: {} has no nameserver in /etc/resolv.conf: cluster DNS resolves the cluster's names only",
            session.host()
        );
    }
    after_api.extend(plans::addons(
        &spec,
        &super_admin,
        &bundle_on_host.coredns.name,
        upstream,
    )?);
    let mut tasks: Vec<Box<dyn Task>> = plans::control_plane(ControlPlaneInput {
        spec: &spec,
        node: &node,
        etcd: Some(EtcdPlan {
            initial_cluster: spec.etcd_initial_cluster()?,
            member,
            state: InitialClusterState::New,
            extra_args: Default::default(),
        }),
        pki: pki.clone(),
        encryption: encryption.clone(),
        bundle: bundle_on_host.clone(),
        cluster_id: record.id.clone(),
        after_api,
        etcd_hooks: Default::default(),
        components: Default::default(),
    })?;
    let operator_key = match &args.operator_ssh_key {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read --operator-ssh-key {}", path.display()))?,
        ),
        None => None,
    };
    let members = Box::new(members::RecordMembers::new(members::MembersInput {
        record: record.clone(),
        host_key: observed.key.to_openssh(),
        fingerprint: observed.key.fingerprint(),
        versions: bundle.versions().clone(),
    }));
    tasks.extend(operator::tasks(
        &operator::OperatorInput {
            record: &record,
            cas: &cas,
            encryption: &encryption,
            bundle: &bundle,
            bundle_key: &bundle_on_host.key,
            ssh_key: operator_key.as_deref(),
        },
        members,
    )?);

    // ---- run it ------------------------------------------------------------------------
    if !args.dry_run {
        // Before the host changes: a run killed from here on resumes with
        // the same cluster, CAs and key.
        state.save_record(&record)?;
    }
    let printer = Printer::new();
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Apply
    };
    eprintln!(
        "\n{} {} on {} ({} tasks):",
        if args.dry_run {
            "plan (dry run: nothing changes)"
        } else {
            "seeding"
        },
        record.name,
        session.host(),
        tasks.len()
    );
    let p = printer.clone();
    let result = Runner::new(&session)
        .mode(mode)
        .on_event(move |e| p.event(e))
        .journal("seed")
        .run(&tasks)
        .await;
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            return Err(anyhow::Error::new(error).context(format!(
                "seeding stopped; the host's progress is in {}/seed.json: fix the cause and run the same command again to resume",
                kubeseed_provision::tasks::JOURNAL_DIR
            )));
        }
    };
    eprintln!("\n{}", summary(&report));
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.dry_run {
        return Ok(());
    }
    state.write("seed-report.json", &serde_json::to_vec_pretty(&report)?)?;
    let admin = write_admin_kubeconfig(&state, &cas, &spec)?;
    let nothing = report.changed() == 0;
    println!(
        "\n{} is {}: Kubernetes {} answers at {} ({:.0} s)",
        node_name,
        if nothing {
            "already seeded, nothing changed"
        } else {
            "seeded"
        },
        record.kubernetes_version,
        spec.server_url()?,
        started.elapsed().as_secs_f64()
    );
    println!("admin kubeconfig: {}", admin.display());
    println!("\nnext:");
    println!("  export KUBECONFIG={}", admin.display());
    println!("  kubectl get nodes,controlplanemembers,etcdmembers");
    if args.operator_ssh_key.is_none() {
        println!(
            "  kubectl -n kubeseed-system create secret generic kubeseed-ssh --type=kubernetes.io/ssh-auth --from-file=ssh-privatekey=KEY   # the operator's SSH key"
        );
    }
    if !record.pod_network.by_kubeseed() {
        println!(
            "  kubectl apply -f YOUR-CNI.yaml   # --pod-network none: nodes stay NotReady and CoreDNS Pending until a CNI runs (pod range {})",
            record.pod_cidr
        );
    }
    println!("  kubectl apply -f docs/examples/control-plane-stacked.yaml   # a second master");
    println!("  kubectl apply -f docs/examples/worker.yaml                  # a worker");
    Ok(())
}

fn advertise_address(args: &SeedArgs, existing: Option<&ClusterRecord>) -> anyhow::Result<IpAddr> {
    if let Some(a) = args.advertise_address {
        return Ok(a);
    }
    if let Some(r) = existing {
        return Ok(r.seed.advertise_address);
    }
    args.host.parse().map_err(|_| {
        anyhow::anyhow!(
            "{} is a name, not an address: give the address the control plane advertises with --advertise-address",
            args.host
        )
    })
}

async fn open_bundle(args: &SeedArgs, state: &StateDir) -> anyhow::Result<Bundle> {
    let Some(arg) = &args.bundle else {
        bail!(
            "no bundle: build one with `bash e2e/toolchain/bundle.sh` and pass its directory with --bundle (or KUBESEED_BUNDLE)"
        );
    };
    let source = Source::from_arg(arg, state.path().join("bundle-cache"));
    let options = match &args.bundle_sha256 {
        Some(hex) => OpenOptions::pinned(
            hex.parse::<Sha256Digest>()
                .map_err(|e| anyhow::anyhow!("--bundle-sha256: {e}"))?,
        ),
        None => OpenOptions::default(),
    };
    let bundle = Bundle::open(&source, &options)
        .await
        .with_context(|| format!("cannot open the bundle {arg}"))?;
    eprintln!(
        "bundle {} from {} (Kubernetes {}, etcd {}, containerd {})",
        bundle.key(),
        bundle.source(),
        bundle.versions().kubernetes(),
        bundle.versions().etcd(),
        bundle.versions().containerd()
    );
    Ok(bundle)
}

/// The admin kubeconfig in the state directory: kept while still right.
fn write_admin_kubeconfig(
    state: &StateDir,
    cas: &ClusterCas,
    spec: &ClusterSpec,
) -> anyhow::Result<PathBuf> {
    let path = state.admin_kubeconfig();
    let mut fresh = HostFiles::default();
    fresh.insert_private(&path, cas.admin_kubeconfig(spec)?);
    let mut existing = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(&path) {
        existing.insert(path.clone(), text);
    }
    let kept = keep_valid(cas, &fresh, &existing, time::OffsetDateTime::now_utc());
    let text = kept.get(&path).unwrap_or_default();
    state.write("admin.conf", text.as_bytes())?;
    Ok(path)
}
