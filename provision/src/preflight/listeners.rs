//! TCP listeners and the processes holding them: from `ss -tlnp`, or,
//! where iproute2's `ss` is missing, from /proc/net/tcp{,6} with socket
//! inodes mapped to PIDs through /proc/PID/fd.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::facts::{Listener, Process};

/// `ss -tlnp` output (with or without its header).
pub(crate) fn parse_ss(lines: &[&str]) -> Vec<Listener> {
    let mut out = Vec::new();
    for line in lines {
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"tcp") {
            // `ss` adds a Netid column when asked for several protocols.
            words.remove(0);
        }
        if words.first() != Some(&"LISTEN") || words.len() < 5 {
            continue;
        }
        let Some((address, port)) = words[3].rsplit_once(':') else {
            continue;
        };
        let Ok(port) = port.parse() else { continue };
        let rest = words[5..].join(" ");
        out.push(Listener {
            address: address.to_owned(),
            port,
            processes: parse_ss_users(&rest),
        });
    }
    out
}

/// `users:(("sshd",pid=1,fd=3),("sshd",pid=2,fd=3))`, each process once.
pub(crate) fn parse_ss_users(text: &str) -> Vec<Process> {
    let mut out: Vec<Process> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("(\"") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find("\",") else { break };
        let name = &rest[..end];
        rest = &rest[end + 2..];
        let pid = rest
            .strip_prefix("pid=")
            .map(|r| {
                r.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|d| d.parse().ok());
        if let Some(pid) = pid
            && !out.iter().any(|p| p.pid == pid)
        {
            out.push(Process {
                name: name.to_owned(),
                pid,
            });
        }
    }
    out
}

/// /proc/net/tcp and tcp6 lines (headers skipped), `ls -l /proc/*/fd`
/// lines (directory headers and `socket:[INODE]` links), and
/// `grep -H '' /proc/*/comm` lines.
pub(crate) fn parse_proc(
    tcp: &[&str],
    fd_listing: &[&str],
    comms: &[&str],
    big_endian: bool,
) -> Vec<Listener> {
    let owners = socket_owners(fd_listing);
    let names = process_names(comms);
    let mut out = Vec::new();
    for line in tcp {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
        if f.len() < 10 || f[3] != "0A" {
            continue;
        }
        let Some((addr, port)) = f[1].split_once(':') else {
            continue;
        };
        let Ok(port) = u16::from_str_radix(port, 16) else {
            continue;
        };
        let Some(address) = hex_address(addr, big_endian) else {
            continue;
        };
        let processes = owners
            .get(f[9])
            .map(|pids| {
                pids.iter()
                    .map(|pid| Process {
                        name: names.get(pid).cloned().unwrap_or_else(|| "?".into()),
                        pid: *pid,
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Listener {
            address,
            port,
            processes,
        });
    }
    out
}

/// An address from /proc/net/tcp: 8 hex digits (IPv4) or 32 (IPv6), each
/// 32-bit word printed in the host's byte order. Shown as `ss` shows it.
pub(crate) fn hex_address(hex: &str, big_endian: bool) -> Option<String> {
    let word = |chunk: &str| -> Option<[u8; 4]> {
        let v = u32::from_str_radix(chunk, 16).ok()?;
        Some(if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        })
    };
    match hex.len() {
        8 => Some(Ipv4Addr::from(word(hex)?).to_string()),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                let w = word(hex.get(i * 8..i * 8 + 8)?)?;
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w);
            }
            Some(format!("[{}]", Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// inode -> PIDs from `ls -l /proc/[0-9]*/fd` output.
fn socket_owners(lines: &[&str]) -> BTreeMap<String, Vec<u32>> {
    let mut owners: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut pid: Option<u32> = None;
    for line in lines {
        if let Some(dir) = line.strip_prefix("/proc/") {
            pid = dir.strip_suffix("/fd:").and_then(|p| p.parse().ok());
            continue;
        }
        let (Some(pid), Some(i)) = (pid, line.find("socket:[")) else {
            continue;
        };
        let inode = &line[i + 8..];
        let inode = inode.split(']').next().unwrap_or(inode);
        let pids = owners.entry(inode.to_owned()).or_default();
        if !pids.contains(&pid) {
            pids.push(pid);
        }
    }
    owners
}

/// PID -> name from `grep -H '' /proc/[0-9]*/comm` output.
fn process_names(lines: &[&str]) -> BTreeMap<u32, String> {
    lines
        .iter()
        .filter_map(|l| {
            let rest = l.strip_prefix("/proc/")?;
            let (pid, name) = rest.split_once("/comm:")?;
            Some((pid.parse().ok()?, name.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ss_lines_with_processes_ipv6_and_scoped_addresses() {
        let text = "State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n\
LISTEN 0      4096       127.0.0.1:2379       0.0.0.0:*    users:((\"etcd\",pid=812,fd=7))\n\
LISTEN 0      128             [::]:22            [::]:*    users:((\"sshd\",pid=90,fd=4),(\"sshd\",pid=91,fd=4),(\"sshd\",pid=90,fd=5))\n\
LISTEN 0      4096               *:10250            *:*    users:((\"kubelet\",pid=1500,fd=20))\n\
LISTEN 0      4096   127.0.0.53%lo:53         0.0.0.0:*    users:((\"systemd-resolve\",pid=300,fd=14))\n\
LISTEN 0      128          0.0.0.0:2024      0.0.0.0:*          \n";
        let lines: Vec<&str> = text.lines().collect();
        let l = parse_ss(&lines);
        assert_eq!(l.len(), 5);
        assert_eq!(l[0].address, "127.0.0.1");
        assert_eq!(l[0].port, 2379);
        assert_eq!(
            l[0].processes,
            vec![Process {
                name: "etcd".into(),
                pid: 812
            }]
        );
        assert_eq!(l[1].address, "[::]");
        assert_eq!(l[1].processes.len(), 2, "each PID once");
        assert_eq!(l[2].address, "*");
        assert_eq!(l[2].port, 10250);
        assert_eq!(l[3].address, "127.0.0.53%lo");
        assert_eq!(l[3].processes[0].name, "systemd-resolve");
        assert_eq!(l[4].port, 2024);
        assert!(l[4].processes.is_empty());
    }

    #[test]
    fn ss_with_a_netid_column() {
        let l = parse_ss(&[
            "tcp   LISTEN 0 4096 0.0.0.0:6443 0.0.0.0:* users:((\"kube-apiserver\",pid=7,fd=3))",
        ]);
        assert_eq!(l[0].port, 6443);
        assert_eq!(l[0].processes[0].name, "kube-apiserver");
    }

    #[test]
    fn hex_addresses_in_host_order() {
        assert_eq!(hex_address("0100007F", false).unwrap(), "127.0.0.1");
        assert_eq!(hex_address("00000000", false).unwrap(), "0.0.0.0");
        assert_eq!(hex_address("7F000001", true).unwrap(), "127.0.0.1");
        assert_eq!(
            hex_address("00000000000000000000000000000000", false).unwrap(),
            "[::]"
        );
        assert_eq!(
            hex_address("00000000000000000000000001000000", false).unwrap(),
            "[::1]"
        );
        assert_eq!(hex_address("xyz", false), None);
    }

    #[test]
    fn proc_net_tcp_with_fd_mapping() {
        // Recorded on the CI runner (fd listing and comm trimmed).
        let tcp = [
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
            "   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 576 1 0000000076ca0756 100 0 0 10 0",
            "   1: 020200C0:A5EC 507100CB:01BB 01 00000000:00000000 02:0000007D 00000000     0        0 24724 2 00000000d2bac736 21 4 26 58 146",
            "   2: 0100007F:9C41 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 91234 1 0000000000000000 100 0 0 10 0",
            "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
            "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 91240 1 0000000000000000 100 0 0 10 0",
        ];
        let fds = [
            "/proc/1/fd:",
            "total 0",
            "lrwx------ 1 root root 64 Nov 30 06:31 3 -> socket:[576]",
            "/proc/4242/fd:",
            "lrwx------ 1 root root 64 Nov 30 06:31 3 -> socket:[91234]",
            "lrwx------ 1 root root 64 Nov 30 06:31 4 -> socket:[91240]",
            "/proc/4243/fd:",
            "lrwx------ 1 root root 64 Nov 30 06:31 3 -> socket:[91234]",
        ];
        let comms = [
            "/proc/1/comm:process_api",
            "/proc/4242/comm:sshd",
            "/proc/4243/comm:sshd: worker",
        ];
        let l = parse_proc(&tcp, &fds, &comms, false);
        assert_eq!(l.len(), 3, "LISTEN (0A) lines only: {l:?}");
        assert_eq!((l[0].address.as_str(), l[0].port), ("0.0.0.0", 2024));
        assert_eq!(l[0].processes[0].name, "process_api");
        assert_eq!((l[1].address.as_str(), l[1].port), ("127.0.0.1", 40001));
        assert_eq!(
            l[1].processes,
            vec![
                Process {
                    name: "sshd".into(),
                    pid: 4242
                },
                Process {
                    name: "sshd: worker".into(),
                    pid: 4243
                }
            ]
        );
        assert_eq!((l[2].address.as_str(), l[2].port), ("[::]", 22));
    }

    #[test]
    fn unmapped_inodes_have_no_processes() {
        let l = parse_proc(
            &[
                "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 5 1 0 100 0 0 10 0",
            ],
            &[],
            &[],
            false,
        );
        assert_eq!(l[0].port, 22);
        assert!(l[0].processes.is_empty());
    }
}
