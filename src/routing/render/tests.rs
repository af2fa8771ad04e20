use super::*;

fn rule(action: &str) -> FirewallRule {
    FirewallRule {
        id: "r1".into(),
        name: "SSH".into(),
        chain: "input".into(),
        protocol: "tcp".into(),
        port_start: 22,
        port_end: 22,
        action: action.into(),
        limit_rate: 5,
        limit_unit: "minute".into(),
        conntrack: "new,established".into(),
        is_system: false,
        created_at: String::new(),
    }
}

#[test]
fn a_limit_rule_drops_over_its_rate_and_keeps_its_counter() {
    let counter = Counter {
        packets: 7,
        bytes: 420,
    };
    assert_eq!(
        rule_text(&rule("limit"), counter),
        "meta l4proto tcp th dport 22 ct state { new, established } limit rate over 5/minute \
         counter packets 7 bytes 420 drop comment \"rule:r1\""
    );
}

#[test]
fn the_peer_policy_comes_first_in_the_forward_chain_and_its_sets_hold_the_peers() {
    let desired = Desired {
        rules: vec![FirewallRule {
            chain: "forward".into(),
            ..rule("accept")
        }],
        entries: Vec::new(),
        rate_limits: Vec::new(),
        peer_subnets: Some(("10.8.0.0/24".parse().unwrap(), "fd00::/64".parse().unwrap())),
        peer_policies: vec![PeerPolicy {
            peer: "alice".into(),
            address_v4: "10.8.0.2".into(),
            address_v6: "fd00::2".into(),
            internet: false,
            peer_to_peer: true,
            updated_at: None,
        }],
        wireguard_interface: "wg0".into(),
        peers_only_ports: vec![587, 993],
        exits: Default::default(),
        counters: HashMap::new(),
        now: crate::time::now(),
    };
    let text = ruleset(&desired);
    // The peers' service ports are dropped off the tunnel before anything may accept them.
    let input = text.split("chain input {").nth(1).expect("an input chain");
    assert!(
        input.lines().nth(1).unwrap_or_default().trim()
            == "iifname != { \"lo\", \"wg0\" } tcp dport { 587, 993 } counter drop \
                comment \"service-peers-only\"",
        "{text}"
    );
    assert!(
        text.contains("  set no_internet4 { type ipv4_addr; elements = { 10.8.0.2 } }\n"),
        "{text}"
    );
    assert!(
        text.contains("  set isolated4 { type ipv4_addr; }\n"),
        "{text}"
    );
    let forward: Vec<&str> = text
        .split("chain forward {")
        .nth(1)
        .and_then(|c| c.split("\n  }").next())
        .expect("a forward chain")
        .lines()
        .skip(1)
        .map(str::trim)
        .collect();
    // Each line by its comment, or whole when it has none.
    let lines: Vec<&str> = forward
        .iter()
        .map(|l| l.rsplit("comment ").next().unwrap_or(l))
        .collect();
    assert_eq!(
        lines,
        [
            "\"killswitch4\"",
            "\"killswitch6\"",
            "\"peer-isolated4-from\"",
            "\"peer-isolated4-to\"",
            "\"peer-isolated6-from\"",
            "\"peer-isolated6-to\"",
            "\"peer-no-internet4\"",
            "\"peer-no-internet6\"",
            "ip saddr @allow4 accept",
            "ip6 saddr @allow6 accept",
            "\"rule:r1\"",
        ],
        "{text}"
    );
}

#[test]
fn an_entry_keeps_its_remaining_time_and_an_expired_one_is_left_out() {
    let now = crate::time::parse_rfc3339("2026-01-01T01:00:00Z").unwrap();
    let entry = |expires: &str| IpEntry {
        id: "e".into(),
        list_type: "blacklist".into(),
        ip_address: "203.0.113.0/24".into(),
        reason: String::new(),
        status: "active".into(),
        expires_at: Some(expires.into()),
        created_at: "2026-01-01T00:00:00Z".into(),
    };
    assert_eq!(
        element(&entry("2026-01-01T02:00:00Z"), true, now).as_deref(),
        Some("203.0.113.0/24 timeout 7200s expires 3600s")
    );
    assert_eq!(element(&entry("2026-01-01T02:00:00Z"), false, now), None);
    assert_eq!(element(&entry("2026-01-01T00:30:00Z"), true, now), None);
}

#[test]
fn an_expiry_past_what_nft_takes_is_held_at_its_longest_timeout() {
    let now = crate::time::parse_rfc3339("2026-12-07T00:00:00Z").unwrap();
    let entry = IpEntry {
        id: "far".into(),
        list_type: "blacklist".into(),
        ip_address: "198.51.100.7".into(),
        reason: String::new(),
        status: "active".into(),
        expires_at: Some("2099-01-01T00:00:00Z".into()),
        created_at: "2026-12-07T00:00:00Z".into(),
    };
    assert_eq!(
        element(&entry, true, now).as_deref(),
        Some("198.51.100.7 timeout 99999999s expires 99999999s")
    );
}
