//! Facts: a hand-made host root with known content, and this machine.

use cfgm_agent::facts::{gather, Group, Package, Service, User};
use std::os::unix::fs::symlink;
use std::path::Path;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn link(root: &Path, rel: &str, target: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    symlink(target, p).unwrap();
}

const DPKG_STATUS: &str = "Package: openssh-server
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 1:9.2p1-2+deb12u3
Conffiles:
 /etc/ssh/moduli 0123
Description: secure shell (SSH) server
 long text

Package: nginx
Status: deinstall ok config-files
Architecture: amd64
Version: 1.22.1-9

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 2.36-9+deb12u4

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.36-9+deb12u4
";

fn debian_root(root: &Path) {
    write(root, "etc/hostname", "web-1\n");
    write(
        root,
        "etc/hosts",
        "127.0.0.1 localhost\n# the host\n10.1.2.3 web-1.dc1.example.net web-1\n",
    );
    // As on Debian: /etc/os-release is an absolute link into /usr/lib.
    link(root, "etc/os-release", "/usr/lib/os-release");
    write(
        root,
        "usr/lib/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    );
    write(root, "var/lib/dpkg/status", DPKG_STATUS);
    // /etc/passwd is an absolute link: it must resolve inside the root
    // (ROOT/real/passwd), never to this machine's /real/passwd.
    link(root, "etc/passwd", "/real/passwd");
    write(
        root,
        "real/passwd",
        "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nbad line\n",
    );
    write(root, "etc/group", "root:x:0:\nsudo:x:27:alice,bob\n");
    write(root, "proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
    write(root, "proc/sys/kernel/arch", "x86_64\n");
    write(
        root,
        "proc/meminfo",
        "MemTotal:        2048000 kB\nMemFree:          100 kB\n",
    );
    write(root, "proc/stat", "cpu  1 2 3\nbtime 1700000000\n");
    write(root, "sys/devices/system/cpu/online", "0-3,6\n");
    write(root, "sys/class/net/eth0/address", "52:54:00:12:34:56\n");
    write(root, "sys/class/net/eth0/mtu", "1500\n");
    write(root, "sys/class/net/eth0/operstate", "up\n");
    write(root, "sys/class/net/eth0/ifindex", "2\n");
    let unit = |rel: &str, text: &str| write(root, &format!("usr/lib/systemd/system/{rel}"), text);
    unit(
        "ssh.service",
        "[Unit]\nDescription=ssh\n[Service]\nExecStart=/usr/sbin/sshd\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n",
    );
    unit(
        "cron.service",
        "[Service]\n[Install]\nWantedBy=multi-user.target\n",
    );
    unit(
        "nginx.service",
        "[Service]\n[Install]\nWantedBy=multi-user.target\n",
    );
    unit("systemd-journald.service", "[Service]\nExecStart=/x\n");
    unit(
        "helper.service",
        "[Service]\n[Install]\nAlso=nginx.service\n",
    );
    unit(
        "getty@.service",
        "[Service]\n[Install]\nWantedBy=getty.target\n",
    );
    link(
        root,
        "etc/systemd/system/multi-user.target.wants/ssh.service",
        "/lib/systemd/system/ssh.service",
    );
    link(
        root,
        "etc/systemd/system/sshd.service",
        "/lib/systemd/system/ssh.service",
    );
    link(
        root,
        "etc/systemd/system/getty.target.wants/getty@tty1.service",
        "/lib/systemd/system/getty@.service",
    );
    link(root, "etc/systemd/system/cron.service", "/dev/null");
}

#[test]
fn facts_of_a_hand_made_debian_root() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let state = t.path().join("state");
    debian_root(&root);
    write(
        &state,
        "applied-commit",
        "0123456789abcdef0123456789abcdef01234567\n",
    );
    let report = serde_json::json!({
        "host": "web-1", "status": "converged", "catalog_id": "cafe01", "tree_id": "0123456789abcdef0123456789abcdef01234567",
        "mode": "apply", "counts": {"unchanged": 1, "changed": 1, "would_change": 0, "failed": 0, "skipped": 0},
        "seconds": 0.5,
        "resources": [
            {"id": {"kind": "file", "name": "/etc/motd"}, "outcome": "changed", "seconds": 0.1,
             "changes": [{"attr": "content", "from": null, "to": "hi"}],
             "observed": {"exists": true, "mode": "0644", "sha256": "abc"}},
            {"id": {"kind": "pkg", "name": "nginx"}, "outcome": "unchanged", "seconds": 0.2,
             "observed": {"version": "1.22.1-9"}}
        ]
    });
    write(&state, "reports/last.json", &report.to_string());

    let f = gather(&root, &state);
    let json = serde_json::to_value(&f).unwrap();
    println!("{json:#}");
    assert_eq!(f.schema_version, 1);
    assert_eq!(f.host, "web-1");
    let s = &f.system;
    assert_eq!(s.hostname.as_deref(), Some("web-1"));
    assert_eq!(s.fqdn.as_deref(), Some("web-1.dc1.example.net"));
    assert_eq!(s.os.id.as_deref(), Some("debian"));
    assert_eq!(s.os.version_id.as_deref(), Some("12"));
    assert_eq!(s.os.codename.as_deref(), Some("bookworm"));
    assert_eq!(
        s.os.pretty_name.as_deref(),
        Some("Debian GNU/Linux 12 (bookworm)")
    );
    assert_eq!(s.kernel.as_deref(), Some("6.1.0-18-amd64"));
    assert_eq!(s.arch.as_deref(), Some("x86_64"));
    assert_eq!(s.cpu_count, Some(5));
    assert_eq!(s.memory_bytes, Some(2048000 * 1024));
    assert_eq!(s.boot_time, Some(1700000000));
    assert_eq!(s.interfaces.len(), 1);
    let eth0 = &s.interfaces[0];
    assert_eq!(eth0.name, "eth0");
    assert_eq!(eth0.mac.as_deref(), Some("52:54:00:12:34:56"));
    assert_eq!(eth0.mtu, Some(1500));
    assert_eq!(eth0.state.as_deref(), Some("up"));
    assert!(
        eth0.addresses.is_empty(),
        "another root has no network of its own"
    );

    let pkg = |n: &str, v: &str, a: &str| Package {
        name: n.into(),
        version: v.into(),
        arch: a.into(),
    };
    assert_eq!(
        f.packages,
        vec![
            pkg("libc6", "2.36-9+deb12u4", "amd64"),
            pkg("libc6", "2.36-9+deb12u4", "i386"),
            pkg("openssh-server", "1:9.2p1-2+deb12u3", "amd64"),
        ],
        "config-files only (nginx) is not installed"
    );
    let svc = |n: &str, e: &str| Service {
        name: n.into(),
        enabled: e.into(),
        active: None,
        sub: None,
    };
    assert_eq!(
        f.services,
        vec![
            svc("cron.service", "masked"),
            svc("getty@tty1.service", "enabled"),
            svc("helper.service", "indirect"),
            svc("nginx.service", "disabled"),
            svc("ssh.service", "enabled"),
            svc("systemd-journald.service", "static"),
        ]
    );
    assert_eq!(
        f.users,
        vec![
            User {
                name: "root".into(),
                uid: 0,
                gid: 0,
                home: "/root".into(),
                shell: "/bin/bash".into(),
                comment: "root".into(),
            },
            User {
                name: "www-data".into(),
                uid: 33,
                gid: 33,
                home: "/var/www".into(),
                shell: "/usr/sbin/nologin".into(),
                comment: "www-data".into(),
            },
        ]
    );
    assert_eq!(
        f.groups,
        vec![
            Group {
                name: "root".into(),
                gid: 0,
                members: vec![]
            },
            Group {
                name: "sudo".into(),
                gid: 27,
                members: vec!["alice".into(), "bob".into()]
            },
        ]
    );
    assert_eq!(
        f.applied.commit.as_deref(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    assert_eq!(f.applied.catalog_id.as_deref(), Some("cafe01"));
    assert_eq!(f.applied.status.as_deref(), Some("converged"));
    assert_eq!(f.resources.len(), 2);
    assert_eq!(json["resources"][0]["id"]["kind"], "file");
    assert_eq!(json["resources"][0]["observed"]["mode"], "0644");
    assert_eq!(json["resources"][1]["observed"]["version"], "1.22.1-9");
    assert_eq!(json["resources"][1]["outcome"], "unchanged");
    assert!(f.problems.is_empty(), "{:?}", f.problems);
}

#[test]
fn missing_sources_are_problems_not_errors() {
    let t = tempfile::tempdir().unwrap();
    let f = gather(t.path(), &t.path().join("state"));
    assert!(f.packages.is_empty() && f.users.is_empty() && f.resources.is_empty());
    assert_eq!(f.system.kernel, None);
    let problems = f.problems.join("\n");
    for p in [
        "/var/lib/dpkg/status",
        "/etc/passwd",
        "/etc/group",
        "/usr/lib/os-release",
    ] {
        assert!(problems.contains(p), "{problems}");
    }
}

#[test]
fn facts_of_this_machine_are_sane() {
    let t = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let f = gather(Path::new("/"), t.path());
    println!(
        "gather(/) in {:?}; problems: {:?}",
        start.elapsed(),
        f.problems
    );
    let s = &f.system;
    assert!(!f.host.is_empty());
    assert!(s.kernel.as_deref().is_some_and(|k| !k.is_empty()));
    assert_eq!(s.arch.as_deref(), Some(std::env::consts::ARCH));
    assert!(s.cpu_count.is_some_and(|n| n >= 1));
    assert!(s.memory_bytes.is_some_and(|m| m > 64 << 20));
    assert!(s
        .boot_time
        .is_some_and(|b| b > 1_000_000_000 && b <= f.time));
    assert!(f.users.iter().any(|u| u.name == "root" && u.uid == 0));
    assert!(f.groups.iter().any(|g| g.name == "root" && g.gid == 0));
    if Path::new("/var/lib/dpkg/status").exists() {
        assert!(
            f.packages.iter().any(|p| p.name == "dpkg"),
            "dpkg lists itself"
        );
    }
    if Path::new("/sys/class/net/lo").exists() {
        let lo = s.interfaces.iter().find(|i| i.name == "lo").unwrap();
        assert!(
            lo.addresses.iter().any(|a| a == "127.0.0.1/8"),
            "{:?} (problems: {:?})",
            lo.addresses,
            f.problems
        );
    }
    assert!(
        f.problems.iter().all(|p| !p.contains("netlink")),
        "{:?}",
        f.problems
    );
}
