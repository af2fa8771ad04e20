//! A stand-in for the internet: a namespace joined to the cell by a veth pair, reached by the
//! peers through the cell (the cell masquerades them, so the host needs no route back).

use super::{run, Lab};

impl Lab {
    /// A new "internet" namespace on the next client slot, joined to the cell only; returns
    /// its address. Gone with the lab.
    pub fn internet_host(&mut self) -> String {
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
        host
    }

    /// Lets the cell's kernel forward IPv4 between its interfaces, in the cell's namespace
    /// only (a new namespace starts with forwarding off).
    pub fn enable_forwarding(&self) {
        run(&format!(
            "ip netns exec {} sysctl -q -w net.ipv4.ip_forward=1",
            self.cell_ns
        ));
    }
}
