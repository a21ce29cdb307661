//! A node's routes to the other nodes' pod ranges ([`crate::render::PodRoutesInput`]):
//! the files and the boot-time unit written, the unit restarted when they
//! changed (which re-runs the script), and the kernel's routes compared
//! with the file on every run, so routes flushed by hand come back even
//! when nothing changed. The operator runs it on every node whenever Nodes
//! come and go.

use std::time::Duration;

use crate::render::{
    POD_ROUTES_FILE, POD_ROUTES_PROTO, POD_ROUTES_SCRIPT, POD_ROUTES_UNIT, PodRoutesInput,
    RenderError, paths,
};
use crate::ssh::shell::quote;
use crate::tasks::{Shell, SystemdService, Task, UNIT_STATE_DIR, WriteFiles};

/// The tasks, in order: the files; the unit enabled, and restarted when the
/// files' digest differs from the one it last ran with; the routes made
/// equal to the file when they are not.
pub fn pod_routes(input: &PodRoutesInput) -> Result<Vec<Box<dyn Task>>, RenderError> {
    let files = input.render()?;
    let digest = files.digest();
    let script = quote(POD_ROUTES_SCRIPT);
    let file = quote(POD_ROUTES_FILE);
    Ok(vec![
        Box::new(WriteFiles::new(
            "pod-routes/files",
            "write the pod routes, their script and unit",
            files,
        )),
        // A oneshot that remains active only re-runs its script on restart.
        Box::new(SystemdService::new(
            "pod-routes/service",
            POD_ROUTES_UNIT,
            digest,
        )),
        // The unit ran once; someone may have flushed the routes since.
        Box::new(
            Shell::new(
                "pod-routes/sync",
                format!("make the kernel's pod routes equal to {POD_ROUTES_FILE}"),
                format!("{script} {file}"),
            )
            .unless(
                format!("{script} --check {file}"),
                "the kernel's pod routes differ from the file",
            )
            .timeout(Duration::from_secs(120)),
        ),
    ])
}

/// Removes the pod routes from a host: the unit stopped and disabled, every
/// route of [`POD_ROUTES_PROTO`] deleted (whatever the file said: it may be
/// gone or stale), the files, the unit and its recorded digest removed.
/// Each step checks first, so it is harmless on a host that never had them.
pub fn teardown_pod_routes() -> Vec<Box<dyn Task>> {
    let unit = quote(POD_ROUTES_UNIT);
    let proto = POD_ROUTES_PROTO;
    let unit_file = paths::unit_path(POD_ROUTES_UNIT.trim_end_matches(".service"));
    let files = [
        POD_ROUTES_FILE.to_owned(),
        POD_ROUTES_SCRIPT.to_owned(),
        unit_file,
        format!(
            "{}/multi-user.target.wants/{POD_ROUTES_UNIT}",
            paths::SYSTEMD_DIR
        ),
        format!("{UNIT_STATE_DIR}/{POD_ROUTES_UNIT}.sha256"),
        format!("{UNIT_STATE_DIR}/{POD_ROUTES_UNIT}.reload.sha256"),
    ]
    .iter()
    .map(|f| quote(f))
    .collect::<Vec<_>>()
    .join(" ");
    let dir = std::path::Path::new(POD_ROUTES_FILE)
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let no_routes = format!(
        "[ -z \"$(ip -4 route show table main proto {proto})\" ] && \
         [ -z \"$(ip -6 route show table main proto {proto} 2>/dev/null)\" ]"
    );
    vec![
        Box::new(
            Shell::new(
                "pod-routes/stop",
                "stop and disable the pod routes' unit",
                format!(
                    "systemctl disable --now {unit} 2>/dev/null; systemctl reset-failed {unit} 2>/dev/null; true"
                ),
            )
            // `activating` too: a failed run waiting to be retried.
            .unless(
                format!(
                    "case \"$(systemctl is-active {unit} 2>/dev/null)\" in active|activating|deactivating|reloading|failed) exit 1;; esac; \
                     ! systemctl is-enabled --quiet {unit} 2>/dev/null"
                ),
                "unit enabled or running",
            )
            .timeout(Duration::from_secs(120)),
        ),
        Box::new(
            Shell::new(
                "pod-routes/routes",
                format!("delete every route of protocol {proto} (kubeseed's pod routes)"),
                format!(
                    "ip -4 route flush table main proto {proto}; \
                     ip -6 route flush table main proto {proto} 2>/dev/null; {no_routes}"
                ),
            )
            .unless(no_routes, "pod routes present"),
        ),
        Box::new(
            Shell::new(
                "pod-routes/files",
                "remove the pod routes' files and unit",
                // Their directory goes too when nothing else of kubeseed's is in it.
                format!(
                    "rm -f {files} && {{ systemctl daemon-reload 2>/dev/null; \
                     rmdir {dir} 2>/dev/null; true; }}",
                    dir = quote(&dir)
                ),
            )
            .unless(
                format!("for p in {files}; do [ ! -e \"$p\" ] && [ ! -L \"$p\" ] || exit 1; done"),
                "files present",
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Cidr;
    use crate::host::fake::{FakeHost, output};
    use crate::render::PodRoute;
    use crate::tasks::{Check, Runner};

    fn input() -> PodRoutesInput {
        PodRoutesInput {
            routes: vec![PodRoute {
                node: "w2".into(),
                cidr: Cidr::parse("10.244.2.0/24").unwrap(),
                via: "10.0.0.22".parse().unwrap(),
            }],
        }
    }

    #[test]
    fn files_then_unit_then_the_kernels_routes() {
        let tasks = pod_routes(&input()).unwrap();
        let ids: Vec<&str> = tasks.iter().map(|t| t.id()).collect();
        assert_eq!(
            ids,
            ["pod-routes/files", "pod-routes/service", "pod-routes/sync"]
        );
        let shown = format!("{:?}", tasks[2]);
        assert!(
            shown.contains("'/etc/kubeseed/pod-routes.sh' --check '/etc/kubeseed/pod-routes'"),
            "{shown}"
        );
    }

    #[test]
    fn the_unit_restarts_when_any_file_changes() {
        let digest = |i: &PodRoutesInput| {
            let tasks = pod_routes(i).unwrap();
            format!("{:?}", tasks[1])
        };
        let mut other = input();
        other.routes[0].via = "10.0.0.23".parse().unwrap();
        assert_ne!(digest(&input()), digest(&other));
        assert_eq!(digest(&input()), digest(&input()));
    }

    #[test]
    fn bad_input_is_a_render_error() {
        let mut bad = input();
        bad.routes[0].via = "10.244.2.1".parse().unwrap();
        assert_eq!(pod_routes(&bad).unwrap_err().reason(), "InvalidInput");
    }

    #[tokio::test]
    async fn flushed_routes_are_made_again_though_the_files_are_unchanged() {
        let tasks = pod_routes(&input()).unwrap();
        let host = FakeHost::new("h:22");
        host.on("--check", output(1, ""));
        let sync = &tasks[2];
        assert!(matches!(
            sync.check(&host).await.unwrap(),
            Check::Apply { .. }
        ));
        sync.apply(&host, &|_| {}).await.unwrap();
        assert!(
            host.commands()
                .iter()
                .any(|c| c == "'/etc/kubeseed/pod-routes.sh' '/etc/kubeseed/pod-routes'"),
            "{:?}",
            host.commands()
        );
    }

    #[tokio::test]
    async fn teardown_only_touches_kubeseeds_routes_and_is_a_no_op_when_done() {
        let tasks = teardown_pod_routes();
        let ids: Vec<&str> = tasks.iter().map(|t| t.id()).collect();
        assert_eq!(
            ids,
            ["pod-routes/stop", "pod-routes/routes", "pod-routes/files"]
        );
        let all = format!("{tasks:?}");
        for part in all.split(';') {
            if part.contains("route flush") || part.contains("route del") {
                assert!(part.contains("proto 152"), "{part}");
            }
        }
        // Every check passes on a host without them: nothing is applied.
        let host = FakeHost::new("h:22");
        let report = Runner::new(&host).run(&tasks).await.unwrap();
        assert_eq!(report.changed(), 0);
        assert!(
            !host.commands().iter().any(|c| c.contains("rm -f")),
            "{:?}",
            host.commands()
        );
    }
}
