//! What the cell's CA may vouch for: the cell's domain (and every name under it) and the
//! cell's two subnets. It is written into the root as a critical NameConstraints extension,
//! so a verifier that honours RFC 5280 refuses anything else the CA might sign, and picd
//! refuses to sign anything else in the first place: peers trust this root, so a root that
//! could vouch for `www.google.com` would let whoever holds its key intercept their traffic.

use std::net::IpAddr;

use ipnet::{Ipv4Net, Ipv6Net};
use rcgen::{CidrSubnet, GeneralSubtree, NameConstraints};
use serde::{Deserialize, Serialize};

/// The cell's domain and subnets, as the CA's constraints hold them (stored as JSON in the
/// `ca` row, so a change of the cell's settings is noticed by comparing the two).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaScope {
    pub domain: String,
    pub subnet_v4: Ipv4Net,
    pub subnet_v6: Ipv6Net,
}

impl CaScope {
    pub fn new(domain: &str, subnet_v4: Ipv4Net, subnet_v6: Ipv6Net) -> CaScope {
        CaScope {
            domain: normalise(domain),
            subnet_v4: subnet_v4.trunc(),
            subnet_v6: subnet_v6.trunc(),
        }
    }

    /// The extension's permitted subtrees: one DNS name, one IPv4 and one IPv6 range. In a
    /// DNS subtree `home.example` covers `home.example` and every name below it.
    pub fn name_constraints(&self) -> NameConstraints {
        NameConstraints {
            permitted_subtrees: vec![
                GeneralSubtree::DnsName(self.domain.clone()),
                GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix(
                    self.subnet_v4.network().octets(),
                    self.subnet_v4.prefix_len(),
                )),
                GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix(
                    self.subnet_v6.network().octets(),
                    self.subnet_v6.prefix_len(),
                )),
            ],
            excluded_subtrees: Vec::new(),
        }
    }

    /// Whether a certificate name (a host name or `*.domain`) is the cell's domain or under it.
    pub fn permits_name(&self, name: &str) -> bool {
        let name = normalise(name);
        let name = name.strip_prefix("*.").unwrap_or(&name);
        name == self.domain || name.ends_with(&format!(".{}", self.domain))
    }

    pub fn permits_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.subnet_v4.contains(&v4),
            IpAddr::V6(v6) => self.subnet_v6.contains(&v6),
        }
    }
}

fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> CaScope {
        CaScope::new(
            "Home.Example.",
            "10.77.0.0/24".parse().unwrap(),
            "fd77:77::/64".parse().unwrap(),
        )
    }

    #[test]
    fn names_under_the_domain_only() {
        let s = scope();
        for ok in [
            "home.example",
            "nas.home.example",
            "*.home.example",
            "A.B.HOME.EXAMPLE.",
        ] {
            assert!(s.permits_name(ok), "{ok}");
        }
        for refused in [
            "www.google.com",
            "example",
            "evilhome.example",
            "home.example.evil",
            "*.example",
            "printer",
        ] {
            assert!(!s.permits_name(refused), "{refused}");
        }
    }

    #[test]
    fn addresses_in_the_subnets_only() {
        let s = scope();
        assert!(s.permits_ip("10.77.0.5".parse().unwrap()));
        assert!(s.permits_ip("fd77:77::5".parse().unwrap()));
        assert!(!s.permits_ip("10.77.1.5".parse().unwrap()));
        assert!(!s.permits_ip("8.8.8.8".parse().unwrap()));
        assert!(!s.permits_ip("fd77:78::5".parse().unwrap()));
        assert!(!s.permits_ip("::ffff:10.77.0.5".parse().unwrap()));
    }
}
