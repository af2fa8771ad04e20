//! A stand-in for the internet: a namespace joined to the cell by a veth pair, reached by the
//! peers through the cell (the cell masquerades them, so the host needs no route back).

use super::{run, Lab};

impl Lab {
    /// A new "internet" namespace on the next client slot, joined to the cell only; returns
    /// its IPv4 and IPv6 addresses. Gone with the lab.
    pub fn internet_host(&mut self) -> (String, String) {
        let slot = self.next_slot;
        assert!(slot < 64, "a lab holds at most 63 clients");
        self.next_slot += 1;
        let (cell, ns) = (self.cell_ns.clone(), format!("pc{}i{slot}", self.tag));
        self.add_namespace(&ns);
        let (cell_side, host) = (self.addr(4 * slot + 1), self.addr(4 * slot + 2));
        run(&format!(
            "ip link add i{slot} netns {cell} type veth peer name eth0 netns {ns}"
        ));
        run(&format!("ip -n {cell} addr add {cell_side}/30 dev i{slot}"));
        run(&format!("ip -n {cell} link set i{slot} up"));
        run(&format!("ip -n {ns} addr add {host}/30 dev eth0"));
        run(&format!("ip -n {ns} link set eth0 up"));
        run(&format!("ip -n {ns} link set lo up"));
        let net6 = format!("fd13:{:x}:{slot:x}:", self.lease.octet);
        run(&format!(
            "ip -n {cell} addr add {net6}:1/64 dev i{slot} nodad"
        ));
        run(&format!("ip -n {ns} addr add {net6}:2/64 dev eth0 nodad"));
        (host, format!("{net6}:2"))
    }

    /// Sets the cell's namespace up as README's install step asks of an administrator:
    /// forwarding on (a new namespace starts with it off) and no ICMP redirects (the
    /// kernel would send one for every packet a peer sends to another peer, back out of the
    /// interface it came in, and each one takes from the same per-host budget as the
    /// "administratively prohibited" answers to that peer). Only this namespace is touched.
    pub fn enable_forwarding(&self) {
        for setting in [
            "net.ipv4.ip_forward=1".to_string(),
            "net.ipv6.conf.all.forwarding=1".to_string(),
            "net.ipv4.conf.all.send_redirects=0".to_string(),
            format!("net.ipv4.conf.{}.send_redirects=0", self.ifname),
        ] {
            run(&format!(
                "ip netns exec {} sysctl -q -w {setting}",
                self.cell_ns
            ));
        }
    }
}
