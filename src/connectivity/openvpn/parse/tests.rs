use super::*;

const FINGERPRINT: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

/// A provider's file as they come: comments, `dev tun`, a redirect-gateway, inline keys.
fn file(extra: &str) -> String {
    format!(
        "# provider file\nclient\ndev tun\nproto udp\nremote vpn.example.net 1194\n\
         remote 198.51.100.7 443 tcp\nnobind\nresolv-retry infinite\npersist-key\n\
         remote-cert-tls server\ncipher AES-256-GCM\nredirect-gateway def1\nverb 3\n{extra}\n\
         <ca>\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n</ca>\n\
         <key>\n-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n</key>\n"
    )
}

fn refused(text: &str, wanted: &str) {
    let err = parse(text, None).err().unwrap_or_default();
    assert!(err.contains(wanted), "{wanted:?} not in {err:?}");
}

#[test]
fn a_provider_file_splits_into_shown_settings_and_a_sanitized_secret() {
    let (settings, secrets) = parse(&file("dhcp-option DNS 10.8.0.1"), None).expect("valid");
    assert_eq!(settings.proto, "udp");
    assert_eq!(settings.port, 1194);
    assert_eq!(
        settings.remotes,
        vec![
            Remote {
                host: "vpn.example.net".into(),
                port: 1194,
                proto: "udp".into()
            },
            Remote {
                host: "198.51.100.7".into(),
                port: 443,
                proto: "tcp".into()
            },
        ]
    );
    assert_eq!(settings.dns, vec!["10.8.0.1".parse::<IpAddr>().unwrap()]);
    assert!(!settings.auth_user_pass);
    let shown = serde_json::to_string(&settings).unwrap();
    assert!(!shown.contains("SECRETKEYMATERIAL"), "{shown}");
    let config = secrets.config.as_str();
    assert!(config.contains("SECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n</key>"));
    assert!(config.contains("cipher AES-256-GCM\n"), "{config}");
    for gone in ["dev tun", "redirect-gateway", "verb", "dhcp-option"] {
        assert!(!config.contains(gone), "{gone} kept: {config}");
    }
}

#[test]
fn an_ipv6_provider_file_gives_its_ipv6_resolver_and_tun_ipv6_is_left_out() {
    let extra = "tun-ipv6\ndhcp-option DNS 10.8.0.1\ndhcp-option DNS6 fd65::1";
    let (settings, secrets) = parse(&file(extra), None).expect("valid");
    let wanted: Vec<IpAddr> = vec!["10.8.0.1".parse().unwrap(), "fd65::1".parse().unwrap()];
    assert_eq!(settings.dns, wanted);
    assert!(!secrets.config.contains("tun-ipv6"), "{}", *secrets.config);
}

#[test]
fn commands_and_what_is_picds_are_refused_by_line() {
    refused(&file("up /bin/sh"), "line 14: up is refused");
    refused(
        &file("script-security 2"),
        "line 14: script-security is refused",
    );
    refused(
        &file("management 127.0.0.1 7505"),
        "line 14: management is refused",
    );
    refused(&file("management-hold"), "management-hold is refused");
    refused(&file("setenv-safe FOO 1"), "setenv-safe is refused");
    refused(&file("log-append /etc/passwd"), "log-append is refused");
    refused(&file("plugin /lib/x.so"), "plugin is refused");
    refused(
        &file("tls-verify \"/bin/sh -c id\""),
        "tls-verify is refused",
    );
    refused(&file("cd /etc"), "cd is refused");
    refused(&file("config /etc/other.conf"), "config is refused");
    refused(&file("dev tap0"), "line 14: dev must be tun");
    refused(&file("dev-node /dev/net/tun"), "dev-node is refused");
    refused(&file("comp-lzo"), "comp-lzo is refused: compression");
    refused(&file("compress lz4-v2"), "VORACLE");
    refused(&file("surprise 1"), "line 14: surprise is not a directive");
    refused(
        &file("auth-user-pass /etc/creds"),
        "auth-user-pass must come without a file",
    );
    refused(&file("key /etc/key.pem"), "key must be an inline block");
    refused(
        &file("<connection>\nremote x\n</connection>"),
        "line 14: <connection> is not",
    );
    refused(&(file("") + "<tls-auth>\nabc\n"), "never closed");
    refused(
        &file("<tls-auth>\nabc"),
        "line 14: <tls-auth> holds a line that is not key material",
    );
    refused(&file("remote bad_host! 1"), "remote must name a host");
    refused(&file("port 70000"), "port must be a port");
    refused(&file("proto icmp"), "proto must be udp or tcp");
    refused(&file("cipher \"AES; rm\""), "cipher has an argument");
    refused(&file("verify-x509-name \"unclosed"), "unclosed quote");
    refused(&file("").replace("remote ", "#remote "), "names no server");
    refused(
        &file("")
            .replace("<ca>", "<extra-certs>")
            .replace("</ca>", "</extra-certs>"),
        "no <ca>",
    );
    refused(
        &file("ifconfig-ipv6 fd65::2/64 fd65::1"),
        "ifconfig-ipv6 is not",
    );
    refused(&file("route-ipv6 2000::/3"), "route-ipv6 is not");
    refused(
        &file("dhcp-option DNS6 not-an-address"),
        "DNS must be an IP",
    );
    refused(&"x".repeat(CONFIG_MAX_BYTES + 1), "longer than");
    assert!(parse(&file("allow-compression no"), None).is_ok());
}

#[test]
fn credentials_go_with_auth_user_pass_only_and_a_fingerprint_verifies_the_server() {
    let creds = || Some(("user".to_string(), "pass word".to_string()));
    refused(&file("auth-user-pass"), "give username and password");
    let err = parse(&file(""), creds()).err().unwrap_or_default();
    assert!(err.contains("no auth-user-pass"), "{err}");
    let (settings, secrets) = parse(&file("auth-user-pass"), creds()).expect("valid");
    assert!(settings.auth_user_pass);
    let (user, pass) = secrets.credentials.expect("credentials");
    assert_eq!((user.as_str(), pass.as_str()), ("user", "pass word"));
    let pinned = file(&format!("peer-fingerprint {FINGERPRINT}"))
        .replace("<ca>", "<extra-certs>")
        .replace("</ca>", "</extra-certs>");
    assert!(
        parse(&pinned, None).is_ok(),
        "{:?}",
        parse(&pinned, None).err()
    );
    assert!(credential("a\nb").is_err() && credential("").is_err());
}

#[test]
fn quoted_words_are_read_and_written_back_as_one() {
    assert_eq!(
        split("verify-x509-name \"C=DE, CN=vpn \\\"x\\\"\" subject # c").unwrap(),
        vec!["verify-x509-name", "C=DE, CN=vpn \"x\"", "subject"]
    );
    assert_eq!(quote("C=DE, CN=vpn \"x\""), "\"C=DE, CN=vpn \\\"x\\\"\"");
    assert_eq!(quote("AES-256-GCM"), "AES-256-GCM");
}
