//! `lab`: bring a lab of real hosts (systemd-nspawn machines) up or down.

use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use kubeseed_e2e::{Lab, LabConfig, ProcessId, Subnet, config, prereq, rootfs};
use tokio::signal::unix::{SignalKind, signal};

/// A lab of real Debian hosts on this machine, for trying kubeseed and for its
/// end-to-end tests. Needs root, systemd-nspawn and debootstrap.
#[derive(Debug, Parser)]
#[command(name = "lab", version)]
struct Cli {
    /// The lab's name (1 to 8 of a-z, 0-9); labs with different names and subnets can coexist.
    #[arg(long, global = true, env = "KUBESEED_LAB_NAME", default_value = config::DEFAULT_NAME)]
    name: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Boot N hosts and keep them up until Ctrl-C or `lab down`.
    Up {
        /// How many hosts.
        #[arg(default_value_t = 3)]
        hosts: usize,
        /// The private /24 the lab owns (must not overlap anything on this machine).
        #[arg(long, env = "KUBESEED_LAB_SUBNET", default_value = config::DEFAULT_SUBNET)]
        subnet: Subnet,
        /// Return once the hosts are up instead of waiting in the foreground.
        /// The hosts are then orphans of PID 1, which must reap them when
        /// `lab down` ends them.
        #[arg(long)]
        detach: bool,
    },
    /// Remove everything the lab made.
    Down,
    /// Show the hosts of a running lab.
    Status {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a command inside a host without SSH (as root, via nsenter).
    Exec {
        /// The host (host1, host2, ...).
        host: String,
        /// The command line, run with /bin/sh -c.
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// SSH into a host as root with the lab's key and pinned host keys.
    Ssh {
        /// The host (host1, host2, ...).
        host: String,
        /// An optional remote command.
        #[arg(trailing_var_arg = true)]
        command: Vec<String>,
    },
    /// Build the base root file system now (or show where the cached one is).
    Base,
    /// Check that this machine can run a lab, and say what is missing.
    Check,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    config::validate_name(&cli.name)?;
    match cli.command {
        Command::Up {
            hosts,
            subnet,
            detach,
        } => up(&cli.name, hosts, subnet, detach).await,
        Command::Down => down(&cli.name),
        Command::Status { json } => status(&cli.name, json),
        Command::Exec { host, command } => {
            let lab = Lab::attach(&cli.name)?;
            let output = lab.exec(&host, &command.join(" "))?;
            print!("{}", output.stdout_text());
            eprint!("{}", output.stderr_text());
            std::process::exit(match output.status {
                kubeseed_provision::ssh::ExitStatus::Code(code) => i32::try_from(code).unwrap_or(1),
                _ => 1,
            });
        }
        Command::Ssh { host, command } => {
            let lab = Lab::attach(&cli.name)?;
            let mut ssh = lab.ssh_command(&host)?;
            ssh.args(command);
            lab.detach();
            Err(ssh.exec()).context("running ssh")
        }
        Command::Base => {
            prereq::check(!rootfs::is_cached())?;
            let base = rootfs::ensure()?;
            println!("base root file system: {}", base.tree.display());
            println!(
                "cache key: {} (suite {}, mirror {})",
                rootfs::cache_key(),
                rootfs::SUITE,
                rootfs::mirror()
            );
            if let Some(built) = base.built {
                println!(
                    "built in {:.1} s, {:.0} MiB",
                    built.seconds,
                    built.bytes as f64 / 1048576.0
                );
            }
            Ok(())
        }
        Command::Check => {
            prereq::check(!rootfs::is_cached())?;
            println!("this machine can run a lab");
            Ok(())
        }
    }
}

async fn up(name: &str, hosts: usize, subnet: Subnet, detach: bool) -> anyhow::Result<()> {
    let config = LabConfig {
        name: name.to_owned(),
        hosts,
        subnet,
    };
    let mut lab = tokio::task::spawn_blocking(move || Lab::up(config)).await??;
    print_hosts(&lab);
    if let Some(report) = lab.up_report() {
        if let Some(built) = report.base_build {
            println!(
                "base root file system built in {:.1} s ({:.0} MiB)",
                built.seconds,
                built.bytes as f64 / 1048576.0
            );
        }
        println!("up({hosts}) took {:.1} s", report.seconds);
        println!("{}", serde_json::json!({"lab": name, "up": report}));
    }
    println!();
    println!("ssh:  cargo run -p kubeseed-e2e --bin lab -- ssh host1");
    println!(
        "      ssh -i {} -o UserKnownHostsFile={} root@{}",
        lab.ssh_private_key_path().display(),
        lab.known_hosts_path().display(),
        lab.hosts()
            .first()
            .map(|h| h.address.to_string())
            .unwrap_or_default()
    );
    if detach {
        // Nobody stays behind to own it: `lab down` does the work itself.
        lab.set_owner(None)?;
        lab.detach();
        println!("the lab stays up; remove it with: lab down --name {name}");
        return Ok(());
    }
    println!("the lab is up; Ctrl-C here or `lab down --name {name}` removes it");
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            // Hosts powered off from inside end as this process's children.
            _ = tick.tick() => lab.reap(),
        }
    }
    let report = tokio::task::spawn_blocking(move || lab.down()).await??;
    print_down(&report)
}

fn down(name: &str) -> anyhow::Result<()> {
    let lab = Lab::attach(name)?;
    if let Some(owner) = lab.owner().filter(ProcessId::is_running)
        && owner.pid != std::process::id()
    {
        // The foreground `lab up` is the parent of the hosts: let it end them,
        // so it can reap them.
        let started = Instant::now();
        lab.detach();
        owner.signal(nix::sys::signal::Signal::SIGTERM)?;
        let state = kubeseed_e2e::state_path(name);
        while owner.is_running() || state.exists() {
            if started.elapsed() > Duration::from_secs(120) {
                bail!(
                    "`lab up` (PID {}) did not finish bringing the lab down in 120 s",
                    owner.pid
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!(
            "down took {:.1} s (done by `lab up`, PID {})",
            started.elapsed().as_secs_f64(),
            owner.pid
        );
        return Ok(());
    }
    let footprint = lab.footprint();
    let report = lab.down()?;
    let mut left = report.left.clone();
    left.extend(footprint.leftovers());
    if !left.is_empty() {
        bail!("down left things behind:\n{}", left.join("\n"));
    }
    print_down(&report)
}

fn print_down(report: &kubeseed_e2e::DownReport) -> anyhow::Result<()> {
    if !report.left.is_empty() {
        bail!("down left things behind:\n{}", report.left.join("\n"));
    }
    println!("down took {:.1} s", report.seconds);
    println!("{}", serde_json::json!({"down": report}));
    Ok(())
}

fn status(name: &str, json: bool) -> anyhow::Result<()> {
    let lab = Lab::attach(name)?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "name": lab.name(),
                "subnet": lab.subnet().to_string(),
                "gateway": lab.gateway(),
                "ssh_private_key": lab.ssh_private_key_path(),
                "known_hosts": lab.known_hosts_path(),
                "hosts": lab.hosts(),
            })
        );
    } else {
        print_hosts(&lab);
    }
    lab.detach();
    Ok(())
}

fn print_hosts(lab: &Lab) {
    println!(
        "lab {} on {} (runner {}, bridge {})",
        lab.name(),
        lab.subnet(),
        lab.gateway(),
        lab.bridge().unwrap_or("?")
    );
    println!(
        "{:<8} {:<15} {:<34} host key",
        "host", "address", "machine-id"
    );
    for host in lab.hosts() {
        println!(
            "{:<8} {:<15} {:<34} {}",
            host.name, host.address, host.machine_id, host.host_key
        );
    }
}
