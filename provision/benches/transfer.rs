//! Upload throughput: kubeseed's SSH engine against OpenSSH `scp` and `sftp`,
//! in the same run, to the same local sshd started here; then downloads
//! (kubeseed with a 32 MiB and a 2 MiB receive window, and `scp`).
//!
//! `cargo bench -p kubeseed-provision --bench transfer`
//!
//! Prints a table and writes the same figures as JSON to
//! `target/bench/transfer.json`. Never asserts on time.
//!
//! - `KUBESEED_BENCH_MIB`: file size in MiB (default 512).
//! - `KUBESEED_BENCH_RUNS`: runs per method; the median is reported (default 3).
//! - `KUBESEED_BENCH_ONLY`: `upload` or `download` to run only that half.
//!
//! Needs root and Debian's `openssh-server` (see `kubeseed_testenv::sshd`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use kubeseed_provision::ssh::{
    Auth, FileSpec, HostKey, HostKeyPolicy, Limits, Session, SshTarget, TransferMethod,
};
use kubeseed_testenv::sshd::Sshd;
use rand::RngCore as _;

type BoxError = Box<dyn std::error::Error>;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn random_file(path: &Path, mib: usize) -> Result<(), BoxError> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut chunk = vec![0u8; 1024 * 1024];
    for _ in 0..mib {
        rand::rng().fill_bytes(&mut chunk);
        f.write_all(&chunk)?;
    }
    // On disk before timing starts: otherwise the first transfer shares the
    // disk with the writeback of this file.
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

fn openssh_args(sshd: &Sshd, known_hosts: &Path) -> Vec<String> {
    vec![
        "-i".into(),
        sshd.client_key().display().to_string(),
        "-o".into(),
        format!("UserKnownHostsFile={}", known_hosts.display()),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
    ]
}

fn timed(cmd: &mut Command) -> Result<f64, BoxError> {
    let started = Instant::now();
    let out = cmd.output()?;
    let secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "{:?} failed ({}): {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(secs)
}

struct Row {
    name: &'static str,
    secs: Vec<f64>,
}

impl Row {
    fn median(&self) -> f64 {
        let mut s = self.secs.clone();
        s.sort_by(f64::total_cmp);
        s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

fn main() -> Result<(), BoxError> {
    let mib = env_usize("KUBESEED_BENCH_MIB", 512);
    let runs = env_usize("KUBESEED_BENCH_RUNS", 3).max(1);
    let only = std::env::var("KUBESEED_BENCH_ONLY").unwrap_or_default();
    let (uploads, downloads) = (only != "download", only != "upload");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let sshd = Sshd::start()?;
    let work = tempfile::tempdir()?;
    let src = work.path().join("payload.bin");
    random_file(&src, mib)?;
    let remote = tempfile::tempdir()?;
    let known = work.path().join("known_hosts");
    std::fs::write(&known, sshd.known_hosts_lines()?)?;
    let dst =
        |name: &str, run: usize| -> PathBuf { remote.path().join(format!("{name}-{run}.bin")) };

    let target = SshTarget::new(
        "127.0.0.1",
        "root",
        Auth::key_file(sshd.client_key()),
        HostKeyPolicy::Pinned(HostKey::parse(&sshd.host_public_key()?)?),
    )
    .with_port(sshd.port());
    let session = rt
        .block_on(Session::connect(&target, &Limits::default()))?
        .0;

    let mut rows = vec![
        Row {
            name: "kubeseed exec-stream",
            secs: vec![],
        },
        Row {
            name: "kubeseed sftp",
            secs: vec![],
        },
        Row {
            name: "openssh scp",
            secs: vec![],
        },
        Row {
            name: "openssh scp -c aes256-gcm",
            secs: vec![],
        },
        Row {
            name: "openssh sftp",
            secs: vec![],
        },
    ];
    let port = sshd.port().to_string();
    for run in (0..runs).filter(|_| uploads) {
        for (i, method) in [TransferMethod::ExecStream, TransferMethod::Sftp]
            .iter()
            .enumerate()
        {
            let path = dst(&format!("kubeseed-{method:?}"), run);
            let spec = FileSpec::mode(0o644).via(*method);
            let started = Instant::now();
            rt.block_on(session.upload(&src, &path.display().to_string(), &spec))?;
            rows[i].secs.push(started.elapsed().as_secs_f64());
            std::fs::remove_file(&path)?;
        }
        for (i, extra) in [(2, None), (3, Some("aes256-gcm@openssh.com"))] {
            let path = dst("scp", run);
            let mut cmd = Command::new("scp");
            cmd.arg("-q")
                .arg("-P")
                .arg(&port)
                .args(openssh_args(&sshd, &known));
            if let Some(c) = extra {
                cmd.arg("-c").arg(c);
            }
            cmd.arg(&src)
                .arg(format!("root@127.0.0.1:{}", path.display()));
            rows[i].secs.push(timed(&mut cmd)?);
            std::fs::remove_file(&path)?;
        }
        let path = dst("sftp", run);
        let batch = work.path().join("batch");
        std::fs::write(
            &batch,
            format!("put {} {}\n", src.display(), path.display()),
        )?;
        let mut cmd = Command::new("sftp");
        cmd.arg("-q")
            .arg("-P")
            .arg(&port)
            .args(openssh_args(&sshd, &known))
            .arg("-b")
            .arg(&batch)
            .arg("root@127.0.0.1");
        rows[4].secs.push(timed(&mut cmd)?);
        std::fs::remove_file(&path)?;
    }

    // Downloads: the client's receive window is ours to choose (Limits).
    let mut small_window = Limits::default();
    small_window.window_size = 2 * 1024 * 1024; // russh's default
    let small = rt.block_on(Session::connect(&target, &small_window))?.0;
    let remote_src = remote.path().join("download-src.bin");
    std::fs::copy(&src, &remote_src)?;
    std::fs::File::open(&remote_src)?.sync_all()?;
    let remote_src_str = remote_src.display().to_string();
    let mut down = vec![
        Row {
            name: "kubeseed exec-stream, 32 MiB window",
            secs: vec![],
        },
        Row {
            name: "kubeseed exec-stream, 2 MiB window",
            secs: vec![],
        },
        Row {
            name: "kubeseed sftp, 32 MiB window",
            secs: vec![],
        },
        Row {
            name: "openssh scp",
            secs: vec![],
        },
    ];
    for run in (0..runs).filter(|_| downloads) {
        let back = work.path().join(format!("back-{run}.bin"));
        for (i, (s, method)) in [
            (&session, TransferMethod::ExecStream),
            (&small, TransferMethod::ExecStream),
            (&session, TransferMethod::Sftp),
        ]
        .into_iter()
        .enumerate()
        {
            let started = Instant::now();
            rt.block_on(s.download(&remote_src_str, &back, method))?;
            down[i].secs.push(started.elapsed().as_secs_f64());
            std::fs::remove_file(&back)?;
        }
        let mut cmd = Command::new("scp");
        cmd.arg("-q")
            .arg("-P")
            .arg(&port)
            .args(openssh_args(&sshd, &known))
            .arg(format!("root@127.0.0.1:{remote_src_str}"))
            .arg(&back);
        down[3].secs.push(timed(&mut cmd)?);
        std::fs::remove_file(&back)?;
    }
    rt.block_on(small.close())?;

    let mbps = |secs: f64| (mib as f64 * 1024.0 * 1024.0) / secs / 1e6;
    let best_kubeseed = rows[..2]
        .iter()
        .map(|r| mbps(r.median()))
        .fold(0.0, f64::max);
    let scp = mbps(rows[2].median());
    let sftp = mbps(rows[4].median());
    let best_download = down[..3]
        .iter()
        .map(|r| mbps(r.median()))
        .fold(0.0, f64::max);
    let scp_down = mbps(down[3].median());
    if uploads {
        println!(
            "\nupload of {mib} MiB to a local sshd, median of {runs} runs (MB = 10^6 bytes)\n"
        );
        println!("| method                     | seconds | MB/s    | vs scp | vs sftp |");
        println!("|----------------------------|---------|---------|--------|---------|");
        for r in &rows {
            let m = mbps(r.median());
            println!(
                "| {:<26} | {:>7.2} | {:>7.1} | {:>5.2}x | {:>6.2}x |",
                r.name,
                r.median(),
                m,
                m / scp,
                m / sftp
            );
        }
        println!(
            "\nkubeseed (best method) / OpenSSH scp = {:.2}x, / OpenSSH sftp = {:.2}x (target >= 0.9x)",
            best_kubeseed / scp,
            best_kubeseed / sftp
        );
    }
    if downloads {
        println!("\ndownload of {mib} MiB from the same sshd, median of {runs} runs\n");
        println!("| method                               | seconds | MB/s    | vs scp |");
        println!("|--------------------------------------|---------|---------|--------|");
        for r in &down {
            let m = mbps(r.median());
            println!(
                "| {:<36} | {:>7.2} | {:>7.1} | {:>5.2}x |",
                r.name,
                r.median(),
                m,
                m / scp_down
            );
        }
        println!(
            "\nkubeseed download (best method) / OpenSSH scp = {:.2}x (target >= 0.9x)",
            best_download / scp_down
        );
    }

    let json = serde_json::json!({
        "bench": "transfer",
        "size_mib": mib,
        "runs": runs,
        "methods": rows.iter().map(|r| serde_json::json!({
            "name": r.name,
            "seconds": r.secs,
            "median_seconds": r.median(),
            "mb_per_s": mbps(r.median()),
        })).collect::<Vec<_>>(),
        "downloads": down.iter().map(|r| serde_json::json!({
            "name": r.name,
            "seconds": r.secs,
            "median_seconds": r.median(),
            "mb_per_s": mbps(r.median()),
        })).collect::<Vec<_>>(),
        "ratio_best_kubeseed_vs_scp": best_kubeseed / scp,
        "ratio_best_kubeseed_vs_sftp": best_kubeseed / sftp,
        "ratio_best_download_vs_scp": best_download / scp_down,
    });
    let out_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.join("transfer.json");
    std::fs::write(&out, serde_json::to_string_pretty(&json)?)?;
    println!("figures written to {}", out.display());
    rt.block_on(session.close())?;
    Ok(())
}
