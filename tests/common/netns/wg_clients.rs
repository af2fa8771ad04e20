//! The lab's WireGuard clients: a namespace each, joined to the cell by a veth pair, running
//! `wireguard-go` configured from a config picd served (as wg-quick would), and the checks
//! the tests make through them.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::*;

impl Lab {
    /// The public keys picd's interface holds right now as `wg` reads them, sorted; none while
    /// the interface is not there.
    pub fn interface_peers(&self) -> Vec<String> {
        let line = format!(
            "ip netns exec {} wg show {} peers",
            self.cell_ns, self.ifname
        );
        let args: Vec<&str> = line.split_whitespace().collect();
        let out = Command::new(args[0])
            .args(&args[1..])
            .stderr(Stdio::null())
            .output();
        let mut keys: Vec<String> = match out {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        keys.sort();
        keys
    }

    /// A new client namespace joined to the cell, running `wireguard-go` configured from
    /// `config_text` (a config picd served) as wg-quick would: keys, peer, addresses, routes.
    pub fn connect(&mut self, config_text: &str) -> WgClient {
        let config = parse_wg_config(config_text);
        let slot = self.next_slot;
        assert!(slot < 64, "a lab holds at most 63 clients");
        self.next_slot += 1;
        let (cell, ns) = (self.cell_ns.clone(), format!("pc{}p{slot}", self.tag));
        let ifname = format!("pw{}p{slot}", self.tag);
        self.add_namespace(&ns);
        let (cell_side, client_side) = (self.addr(4 * slot + 1), self.addr(4 * slot + 2));
        run(&format!(
            "ip link add c{slot} netns {cell} type veth peer name eth0 netns {ns}"
        ));
        run(&format!("ip -n {cell} addr add {cell_side}/30 dev c{slot}"));
        run(&format!("ip -n {cell} link set c{slot} up"));
        run(&format!("ip -n {ns} addr add {client_side}/30 dev eth0"));
        run(&format!("ip -n {ns} link set eth0 up"));
        run(&format!("ip -n {ns} link set lo up"));
        // The endpoint is the cell's address on its root-facing veth: reach it over this pair.
        let (host, _) = config
            .endpoint
            .rsplit_once(':')
            .expect("Endpoint is host:port");
        run(&format!("ip -n {ns} route add {host}/32 via {cell_side}"));

        let log = self.log_file(&format!("{ifname}.log"));
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, "wireguard-go", &ifname])
            .env("WG_PROCESS_FOREGROUND", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawning wireguard-go");
        self.wg_children.push(child);
        self.sockets.push(ifname.clone());
        let socket = Path::new(WG_RUN_DIR).join(format!("{ifname}.sock"));
        let up = eventually(SOCKET_TIMEOUT, || socket.exists());
        assert!(up, "wireguard-go did not create {}", socket.display());
        let client = WgClient { ns, ifname, config };
        self.apply(&client);
        client
    }

    /// Gives a running client the keys and peer of a new config picd served (as a user who
    /// imports the updated config into the same app); addresses and routes stay.
    pub fn reconfigure(&self, client: &WgClient, config_text: &str) -> WgClient {
        let config = parse_wg_config(config_text);
        run(&format!(
            "ip netns exec {} wg set {} peer {} remove",
            client.ns, client.ifname, client.config.public_key
        ));
        let client = WgClient {
            config,
            ..client.clone()
        };
        self.set_keys(&client);
        client
    }

    /// `wg set` the client's keys and peer, then its addresses and routes.
    fn apply(&self, client: &WgClient) {
        self.set_keys(client);
        let (c, ns, ifname) = (&client.config, &client.ns, &client.ifname);
        for address in &c.addresses {
            let nodad = if address.contains(':') { "nodad" } else { "" };
            run(&format!(
                "ip -n {ns} addr add {address} dev {ifname} {nodad}"
            ));
        }
        run(&format!("ip -n {ns} link set {ifname} up"));
        for net in &c.allowed_ips {
            let family = if net.contains(':') { "-6" } else { "-4" };
            run(&format!("ip -n {ns} {family} route add {net} dev {ifname}"));
        }
    }

    /// `wg set` the client's private key and its one peer (the cell).
    fn set_keys(&self, client: &WgClient) {
        let (c, ns, ifname) = (&client.config, &client.ns, &client.ifname);
        let key_file = |name: &str, key: &str| {
            let path = self.dir.path().join(format!("{ifname}.{name}"));
            std::fs::write(&path, key).expect("key file");
            path.to_string_lossy().into_owned()
        };
        let private = c
            .private_key
            .as_deref()
            .expect("the config has a PrivateKey");
        let mut line = format!(
            "ip netns exec {ns} wg set {ifname} private-key {} peer {} endpoint {} allowed-ips {}",
            key_file("key", private),
            c.public_key,
            c.endpoint,
            c.allowed_ips.join(",")
        );
        if let Some(psk) = &c.preshared_key {
            line += &format!(" preshared-key {}", key_file("psk", psk));
        }
        if let Some(k) = c.persistent_keepalive {
            line += &format!(" persistent-keepalive {k}");
        }
        run(&line);
    }

    /// Whether one ping from the client to `target` through its tunnel gets an answer.
    pub fn ping(&self, client: &WgClient, target: &str) -> bool {
        succeeds(&format!(
            "ip netns exec {} ping -c 1 -W 1 -q {target}",
            client.ns
        ))
    }

    /// How many of `count` pings to the cell's WireGuard address are answered.
    pub fn pings_answered(&self, client: &WgClient, count: usize) -> usize {
        let target = self.cell_wg_addr();
        (0..count).filter(|_| self.ping(client, &target)).count()
    }

    /// Pings the cell's WireGuard address until it answers or `timeout` passes.
    pub fn tunnel_works_within(&self, client: &WgClient, timeout: Duration) -> bool {
        let target = self.cell_wg_addr();
        eventually(timeout, || self.ping(client, &target))
    }
}
