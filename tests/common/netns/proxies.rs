//! Proxy providers for the proxy-exit tests: in the provider namespace a SOCKS5 server
//! (Debian's dante-server, username/password checked against a passwd file of its own) and an
//! HTTP CONNECT proxy (Debian's tinyproxy, Basic auth); in the internet namespace a resolver
//! on the hard-coded resolver's address that answers one name over UDP and TCP and logs who
//! asked. `ip netns exec` bind-mounts `/etc/netns/<ns>/*` over `/etc`, so dante's users and a
//! peer's resolv.conf stay inside their namespaces; `EtcNetns` removes those files.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{run, Lab, Provider, HARD_CODED_RESOLVER, INTERNET_SERVER, PROVIDER_ADDR};

pub const SOCKS_PORT: u16 = 1080;
pub const HTTP_PROXY_PORT: u16 = 8888;
pub const PROXY_USER: &str = "picdproxy";
/// No space: tinyproxy's BasicAuth line takes none.
pub const PROXY_PASSWORD: &str = "s3cret-proxy.pass";
/// The name the resolver answers, with the internet server's address.
pub const INTERNET_NAME: &str = "internet.test";

/// Files under /etc/netns/<ns>/, removed when dropped.
pub struct EtcNetns(PathBuf);

impl EtcNetns {
    pub fn write(ns: &str, name: &str, text: &str, mode: u32) -> EtcNetns {
        use std::os::unix::fs::PermissionsExt;
        let dir = PathBuf::from("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).expect("/etc/netns/<ns>");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("netns file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("mode");
        EtcNetns(dir)
    }
}

impl Drop for EtcNetns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Answers A for INTERNET_NAME (else an empty NOERROR), over UDP and TCP on the hard-coded
/// resolver's address, printing "udp|tcp <asker>" for each query.
const RESOLVER: &str = r#"
import socket, struct, sys, threading
NAME, ADDR, LISTEN = sys.argv[1].encode(), socket.inet_aton(sys.argv[2]), sys.argv[3]
def answer(q):
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]]); i += 1 + q[i]
    qtype = q[i + 1:i + 3]; end = i + 5
    hit = b".".join(labels).lower() == NAME and qtype == b"\x00\x01"
    head = q[:2] + bytes([0x84 | (q[2] & 1), 0x80]) + b"\x00\x01" + struct.pack(">H", hit) + b"\x00\x00\x00\x00"
    rr = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + ADDR if hit else b""
    return head + q[12:end] + rr
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((LISTEN, 53))
    while True:
        d, a = s.recvfrom(4096); print("udp", a[0], flush=True); s.sendto(answer(d), a)
def client(c, a):
    with c:
        while True:
            n = c.recv(2)
            if len(n) < 2: return
            d = b""
            while len(d) < struct.unpack(">H", n)[0]: d += c.recv(4096)
            print("tcp", a[0], flush=True); r = answer(d); c.sendall(struct.pack(">H", len(r)) + r)
threading.Thread(target=udp, daemon=True).start()
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind((LISTEN, 53)); t.listen(16)
while True:
    c, a = t.accept(); threading.Thread(target=client, args=(c, a), daemon=True).start()
"#;

/// The proxies the test runs; their PIDs stop them.
pub struct Proxies {
    pub socks_pid: u32,
    pub http_pid: u32,
    pub resolver_log: PathBuf,
    _passwd: Vec<EtcNetns>,
}

impl Lab {
    fn spawn_in(&mut self, ns: &str, args: &[&str], log: &str) -> u32 {
        let log = self.log_file(log);
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{args:?}: {e} (run packaging/install-test-deps)"));
        let pid = child.id();
        self.wg_children.push(child);
        pid
    }

    /// dante with a user and password, tinyproxy with the same in Basic auth, both on the
    /// provider's address, and the resolver in the internet.
    pub fn proxies(&mut self, provider: &Provider) -> Proxies {
        // Not `run`: the password has a space.
        let hash = Command::new("openssl")
            .args(["passwd", "-6", "-salt", "picdtest1", PROXY_PASSWORD])
            .output()
            .expect("openssl passwd");
        let hash = String::from_utf8_lossy(&hash.stdout).into_owned();
        // Only the namespace's processes see these users.
        let passwd = format!(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
             {PROXY_USER}:x:64999:65534::/nonexistent:/usr/sbin/nologin\n"
        );
        let shadow = format!(
            "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n{PROXY_USER}:{}:19000:0:99999:7:::\n",
            hash.trim()
        );
        let files = vec![
            EtcNetns::write(&provider.ns, "passwd", &passwd, 0o644),
            EtcNetns::write(&provider.ns, "shadow", &shadow, 0o600),
        ];
        let dante = self.dir.path().join("danted.conf");
        std::fs::write(
            &dante,
            format!(
                "logoutput: stderr\ninternal: {PROVIDER_ADDR} port = {SOCKS_PORT}\n\
                 external: {PROVIDER_ADDR}\nsocksmethod: username\nclientmethod: none\n\
                 user.privileged: root\nuser.unprivileged: nobody\n\
                 client pass {{ from: 0.0.0.0/0 to: 0.0.0.0/0 }}\n\
                 socks pass {{ from: 0.0.0.0/0 to: 0.0.0.0/0 }}\n"
            ),
        )
        .expect("danted.conf");
        let tiny = self.dir.path().join("tinyproxy.conf");
        std::fs::write(
            &tiny,
            format!(
                "Port {HTTP_PROXY_PORT}\nListen {PROVIDER_ADDR}\nUser nobody\nGroup nogroup\n\
                 Timeout 60\nBasicAuth {PROXY_USER} {PROXY_PASSWORD}\nLogLevel Info\n"
            ),
        )
        .expect("tinyproxy.conf");
        let ns = provider.ns.clone();
        let socks_pid = self.spawn_in(
            &ns,
            &["danted", "-f", &dante.to_string_lossy()],
            "danted.log",
        );
        let http_pid = self.spawn_in(
            &ns,
            &["tinyproxy", "-d", "-c", &tiny.to_string_lossy()],
            "tinyproxy.log",
        );
        let internet = provider.internet_ns.clone();
        self.spawn_in(
            &internet,
            &[
                "python3",
                "-c",
                RESOLVER,
                INTERNET_NAME,
                INTERNET_SERVER,
                HARD_CODED_RESOLVER,
            ],
            "resolver.log",
        );
        Proxies {
            socks_pid,
            http_pid,
            resolver_log: self.dir.path().join("resolver.log"),
            _passwd: files,
        }
    }

    /// Restarts dante after the test stopped it.
    pub fn restart_socks(&mut self, provider: &Provider) -> u32 {
        let dante = self.dir.path().join("danted.conf");
        self.spawn_in(
            &provider.ns,
            &["danted", "-f", &dante.to_string_lossy()],
            "danted.log",
        )
    }

    /// What dante, tinyproxy and the resolver logged (for a failure).
    pub fn proxy_logs(&self) -> String {
        ["danted.log", "tinyproxy.log", "resolver.log"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                format!(
                    "--- {name}\n{}\n",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect()
    }

    /// picd's redsocks PIDs, from the PID files it keeps in its state directory.
    pub fn redsocks_pids(&self) -> Vec<u32> {
        let dir = self.state_dir().join("connectivity");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pid"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok()?.trim().parse().ok())
            .collect()
    }
}

/// Whether a process runs (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Stops a process the test started (or picd started for it) by its PID.
pub fn stop_pid(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}
