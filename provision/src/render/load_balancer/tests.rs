use super::*;
use crate::render::HEADER;

const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn input(proxy: Proxy) -> LoadBalancerInput {
    LoadBalancerInput {
        proxy,
        port: 6443,
        vip: ip("10.213.0.100"),
        prefix_len: 24,
        interface: "eth0".into(),
        backends: vec![
            Backend {
                name: "master-1".into(),
                address: "10.213.0.11".into(),
                port: 6443,
            },
            Backend {
                name: "master-2".into(),
                address: "master-2.example.org".into(),
                port: 6443,
            },
        ],
        vrrp: Vrrp {
            instance: "kubeseed_api".into(),
            router_id: 51,
            priority: 150,
            advert_interval_ms: DEFAULT_ADVERT_INTERVAL_MS,
            unicast_source: ip("10.213.0.31"),
            unicast_peers: vec![ip("10.213.0.32")],
        },
        ca_pem: CA.into(),
        programs: Programs::default_for(proxy),
        nginx_stream_module: None,
    }
}

fn refused(i: &LoadBalancerInput) -> String {
    let err = i.render().unwrap_err();
    assert_eq!(err.reason(), "InvalidInput", "{err}");
    assert_eq!(err.component(), Component::LoadBalancer);
    err.to_string()
}

#[test]
fn the_default_layout_is_the_documented_paths() {
    let l = Layout::default();
    assert_eq!(l.stats_socket(), HAPROXY_STATS_SOCKET);
    assert_eq!(l.state_file(), VRRP_STATE_FILE);
    assert_eq!(l.transitions_log(), TRANSITIONS_LOG);
    for proxy in [Proxy::HaProxy, Proxy::Nginx] {
        assert_eq!(l.proxy_config(proxy), proxy.config_path());
        let r = input(proxy).render().unwrap();
        assert_eq!(r.proxy_config.path, proxy.config_path());
        assert_eq!(r.proxy_unit, proxy.unit());
        assert!(
            r.support
                .get(format!("/etc/systemd/system/{}", proxy.unit()))
                .is_some()
        );
    }
    assert_eq!(Programs::default().proxy, "/usr/sbin/haproxy");
    assert_eq!(Programs::default_for(Proxy::Nginx).proxy, "/usr/sbin/nginx");
}

#[test]
fn files_modes_and_headers() {
    let r = input(Proxy::HaProxy).render().unwrap();
    let all = r.all_files();
    let paths: Vec<String> = all.iter().map(|(p, _)| p.display().to_string()).collect();
    assert_eq!(
        paths,
        [
            "/etc/kubeseed/lb/ca.crt",
            "/etc/kubeseed/lb/check-proxy.sh",
            "/etc/kubeseed/lb/haproxy.cfg",
            "/etc/kubeseed/lb/keepalived.conf",
            "/etc/kubeseed/lb/vrrp-notify.sh",
            "/etc/systemd/system/kubeseed-haproxy.service",
            "/etc/systemd/system/kubeseed-keepalived.service",
        ]
    );
    for (path, file) in all.iter() {
        let script = path.extension().is_some_and(|e| e == "sh");
        assert_eq!(
            file.mode,
            if script { 0o755 } else { 0o644 },
            "{}",
            path.display()
        );
        if path.ends_with("ca.crt") {
            assert_eq!(file.contents, CA);
        } else if script {
            assert!(
                file.contents
                    .starts_with(&format!("#!/bin/bash\n{HEADER}\n"))
            );
        } else {
            assert!(
                file.contents.starts_with(&format!("{HEADER}\n")),
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn validators_quote_the_path_and_name_the_program() {
    let r = input(Proxy::HaProxy).render().unwrap();
    assert_eq!(
        r.proxy_config
            .validate_command("/etc/kubeseed/lb/haproxy.cfg.kubeseed-new"),
        "/usr/sbin/haproxy -c -f /etc/kubeseed/lb/haproxy.cfg.kubeseed-new"
    );
    assert_eq!(
        r.keepalived_config.validate_command("/tmp/it's here"),
        r"/usr/sbin/keepalived -t -f '/tmp/it'\''s here'"
    );
    let r = input(Proxy::Nginx).render().unwrap();
    assert_eq!(
        r.proxy_config.validate_command("/x/{}"),
        "mkdir -p /run/kubeseed-nginx && /usr/sbin/nginx -t -q -e stderr -c '/x/{}'"
    );
}

#[test]
fn haproxy_binds_every_address_of_the_vip_family() {
    let cfg = input(Proxy::HaProxy)
        .render()
        .unwrap()
        .proxy_config
        .contents;
    assert!(cfg.contains("\n    bind *:6443\n"), "{cfg}");
    let mut v6 = input(Proxy::HaProxy);
    v6.vip = ip("fd00:213::100");
    v6.prefix_len = 64;
    v6.vrrp.unicast_source = ip("fd00:213::31");
    v6.vrrp.unicast_peers = vec![ip("fd00:213::32")];
    v6.backends[0].address = "fd00:213::11".into();
    let cfg = v6.render().unwrap().proxy_config.contents;
    assert!(cfg.contains("\n    bind :::6443 v4v6\n"), "{cfg}");
    assert!(
        cfg.contains("server master-1 [fd00:213::11]:6443 check"),
        "{cfg}"
    );
    assert!(
        cfg.contains("server master-2 master-2.example.org:6443 check"),
        "{cfg}"
    );
}

#[test]
fn nginx_listens_on_both_families_for_an_ipv6_vip() {
    let mut i = input(Proxy::Nginx);
    let cfg = i.render().unwrap().proxy_config.contents;
    assert!(
        cfg.contains("        listen 6443;\n        proxy_pass"),
        "{cfg}"
    );
    assert!(!cfg.contains("load_module"), "{cfg}");
    i.vip = ip("fd00:213::100");
    i.prefix_len = 64;
    i.vrrp.unicast_source = ip("fd00:213::31");
    i.vrrp.unicast_peers.clear();
    i.nginx_stream_module = Some("/usr/lib/nginx/modules/ngx_stream_module.so".into());
    let cfg = i.render().unwrap().proxy_config.contents;
    assert!(
        cfg.contains("        listen 6443;\n        listen [::]:6443;\n"),
        "{cfg}"
    );
    assert!(
        cfg.contains("\nload_module /usr/lib/nginx/modules/ngx_stream_module.so;\n"),
        "{cfg}"
    );
}

#[test]
fn zero_backends_still_render_a_startable_proxy() {
    let mut i = input(Proxy::HaProxy);
    i.backends.clear();
    let cfg = i.render().unwrap().proxy_config.contents;
    assert!(!cfg.contains("    server "), "{cfg}");
    assert!(cfg.contains(&format!("backend {BACKEND}\n")), "{cfg}");
    i.proxy = Proxy::Nginx;
    let cfg = i.render().unwrap().proxy_config.contents;
    assert!(
        cfg.contains(&format!("server {} down;", nginx::PLACEHOLDER_SERVER)),
        "{cfg}"
    );
    assert_eq!(cfg.matches("        server ").count(), 1, "{cfg}");
}

#[test]
fn keepalived_uses_unicast_only_with_peers() {
    let mut i = input(Proxy::HaProxy);
    let cfg = i.render().unwrap().keepalived_config.contents;
    assert!(
        cfg.contains(
            "    unicast_src_ip 10.213.0.31\n    unicast_peer {\n        10.213.0.32\n    }\n"
        ),
        "{cfg}"
    );
    assert!(cfg.contains("    advert_int 0.2\n"), "{cfg}");
    assert!(cfg.contains("        10.213.0.100/24 dev eth0\n"), "{cfg}");
    i.vrrp.unicast_peers.clear();
    let cfg = i.render().unwrap().keepalived_config.contents;
    assert!(!cfg.contains("unicast"), "{cfg}");
    assert!(cfg.contains("    mcast_src_ip 10.213.0.31\n"), "{cfg}");
}

#[test]
fn advert_intervals_are_written_in_seconds() {
    for (ms, text) in [
        (10, "0.01"),
        (200, "0.2"),
        (250, "0.25"),
        (1000, "1"),
        (1050, "1.05"),
        (40_950, "40.95"),
    ] {
        assert_eq!(keepalived::advert_int(ms), text);
    }
}

#[test]
fn master_down_interval_is_keepaliveds() {
    // 3 × 0.2 s + (256 − 100) × 0.2 s / 256 = 0.6 + 0.121875 s.
    assert_eq!(
        master_down_interval(200, 100),
        Duration::from_micros(721_875)
    );
    // The higher the priority, the shorter the wait.
    assert_eq!(
        master_down_interval(200, 254),
        Duration::from_micros(601_562)
    );
    assert_eq!(
        master_down_interval(1000, 1),
        Duration::from_micros(3_996_093)
    );
    assert!(master_down_interval(200, 200) < master_down_interval(200, 100));
}

#[test]
fn ranges_are_refused_with_the_field_named() {
    let mut i = input(Proxy::HaProxy);
    i.vrrp.priority = 255;
    assert!(refused(&i).contains("VRRP priority"));
    i.vrrp.priority = 0;
    assert!(refused(&i).contains("1 to 254"));
    let mut i = input(Proxy::HaProxy);
    i.vrrp.router_id = 0;
    assert!(refused(&i).contains("VRRP router id"));
    for ms in [0, 5, 205, 40_960] {
        let mut i = input(Proxy::HaProxy);
        i.vrrp.advert_interval_ms = ms;
        assert!(refused(&i).contains("advert interval"), "{ms}");
    }
    let mut i = input(Proxy::HaProxy);
    i.prefix_len = 33;
    assert!(refused(&i).contains("prefix length"));
    i.prefix_len = 0;
    assert!(refused(&i).contains("prefix length"));
    let mut i = input(Proxy::HaProxy);
    i.port = 0;
    assert!(refused(&i).contains("port"));
    let mut i = input(Proxy::HaProxy);
    i.backends[1].port = 0;
    assert!(refused(&i).contains("port of backend \"master-2\""));
}

#[test]
fn names_that_could_break_a_config_are_refused() {
    for bad in [
        "eth0 x",
        "eth0\n}",
        "eth0;",
        "eth0\"",
        "",
        "averyveryverylong0",
        "..",
        "eth/0",
    ] {
        let mut i = input(Proxy::HaProxy);
        i.interface = bad.into();
        assert!(refused(&i).contains("interface name"), "{bad:?}");
    }
    for bad in ["master 1", "m1\n    server x", "m1#", "m{1}", ""] {
        let mut i = input(Proxy::Nginx);
        i.backends[0].name = bad.into();
        assert!(refused(&i).contains("backend name"), "{bad:?}");
    }
    let mut i = input(Proxy::HaProxy);
    i.backends[1].name = "master-1".into();
    assert!(refused(&i).contains("unique"));
    for bad in [
        "10.0.0.1; x",
        "-a.example",
        "a..b",
        "a_b.example",
        "",
        "[::1]",
    ] {
        let mut i = input(Proxy::HaProxy);
        i.backends[0].address = bad.into();
        assert!(
            refused(&i).contains("address of backend \"master-1\""),
            "{bad:?}"
        );
    }
    for bad in ["kubeseed api", "api.x", "api\"", "x}"] {
        let mut i = input(Proxy::HaProxy);
        i.vrrp.instance = bad.into();
        assert!(refused(&i).contains("VRRP instance name"), "{bad:?}");
    }
    for bad in [
        "haproxy",
        "/usr/sbin/ha proxy",
        "/usr/../sbin/haproxy",
        "/a;b",
    ] {
        let mut i = input(Proxy::HaProxy);
        i.programs.proxy = bad.into();
        assert!(refused(&i).contains("proxy program path"), "{bad:?}");
    }
    let mut i = input(Proxy::Nginx);
    i.nginx_stream_module = Some("/m.so; include /etc/passwd".into());
    assert!(refused(&i).contains("nginx stream module path"));
    let mut i = input(Proxy::HaProxy);
    i.ca_pem = "not a certificate".into();
    assert!(refused(&i).contains("CA certificate"));
}

#[test]
fn vrrp_addresses_must_share_the_vip_family() {
    let mut i = input(Proxy::HaProxy);
    i.vrrp.unicast_peers.push(ip("fd00::32"));
    assert!(refused(&i).contains("VRRP unicast peer"));
    let mut i = input(Proxy::HaProxy);
    i.vrrp.unicast_source = ip("fd00::31");
    assert!(refused(&i).contains("VRRP unicast source"));
    let mut i = input(Proxy::HaProxy);
    i.vrrp.unicast_peers.push(ip("10.213.0.31"));
    assert!(refused(&i).contains("own address"));
    let mut i = input(Proxy::HaProxy);
    i.vip = ip("127.0.0.1");
    assert!(refused(&i).contains("VIP"));
}

#[test]
fn units_escape_their_arguments_and_keep_mainpid() {
    let mut i = input(Proxy::Nginx);
    i.programs.keepalived = "/opt/keepalived+2/sbin/keepalived".into();
    let r = i.render().unwrap();
    let nginx = r
        .support
        .get("/etc/systemd/system/kubeseed-nginx.service")
        .unwrap();
    assert!(
        nginx.contains(
            "ExecStart=/usr/sbin/nginx -e stderr -c /etc/kubeseed/lb/nginx.conf -g \"daemon off;\"\n"
        ),
        "{nginx}"
    );
    assert!(
        nginx.contains("ExecReload=/bin/kill -HUP $MAINPID\n"),
        "{nginx}"
    );
    let ka = r
        .support
        .get("/etc/systemd/system/kubeseed-keepalived.service")
        .unwrap();
    assert!(
        ka.contains("After=network-online.target kubeseed-nginx.service\n"),
        "{ka}"
    );
    assert!(
        ka.contains("ExecStart=/opt/keepalived+2/sbin/keepalived --dont-fork"),
        "{ka}"
    );
}

#[test]
fn check_script_names_the_proxy_unit_and_port() {
    let mut i = input(Proxy::Nginx);
    i.port = 8443;
    let r = i.render().unwrap();
    let script = r.support.get("/etc/kubeseed/lb/check-proxy.sh").unwrap();
    assert!(
        script.contains("systemctl is-active --quiet kubeseed-nginx.service || exit 1\n"),
        "{script}"
    );
    assert!(script.contains("/dev/tcp/127.0.0.1/8443"), "{script}");
}
