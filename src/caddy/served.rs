//! The certificate Caddy really serves for a name: a TLS handshake with Caddy's https address,
//! the name as SNI, reading the leaf certificate. Nothing is trusted on the strength of it;
//! it only reports what browsers are shown (in acme mode, what Caddy obtained).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsConnector;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the served certificate says.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServedCertificate {
    pub subject: String,
    pub issuer: String,
    pub names: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
}

/// Accepts any certificate but still checks the handshake's signatures, so what is read is
/// the certificate of the server that answered.
#[derive(Debug)]
struct ReadOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for ReadOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Where to reach a listen address from this machine: all interfaces means loopback.
pub fn dial_address(listen: &str) -> Option<SocketAddr> {
    let (host, port) = listen.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "" | "0.0.0.0" => [127, 0, 0, 1].into(),
        "::" => std::net::Ipv6Addr::LOCALHOST.into(),
        other => other.parse().ok()?,
    };
    Some(SocketAddr::new(ip, port))
}

/// Handshakes with `listen` for `name` and reads the leaf certificate.
pub async fn fetch(listen: &str, name: &str) -> Result<ServedCertificate, String> {
    let addr = dial_address(listen).ok_or_else(|| format!("cannot dial {listen}"))?;
    let provider = Arc::new(crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ReadOnly(provider)))
        .with_no_client_auth();
    let server_name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        TlsConnector::from(Arc::new(config))
            .connect(server_name, tcp)
            .await
    };
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| format!("no TLS handshake with {addr} within {HANDSHAKE_TIMEOUT:?}"))?
        .map_err(|e| format!("TLS handshake with {addr} for {name}: {e}"))?;
    let leaf = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .ok_or_else(|| format!("{addr} sent no certificate for {name}"))?;
    describe(leaf)
}

fn describe(der: &[u8]) -> Result<ServedCertificate, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the served certificate does not parse: {e}"))?;
    let time = |t: x509_parser::time::ASN1Time| crate::time::format_rfc3339(t.to_datetime());
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => d.to_string(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let not_after = cert.validity().not_after.to_datetime();
    Ok(ServedCertificate {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_before: time(cert.validity().not_before),
        not_after: time(cert.validity().not_after),
        days_left: (not_after - crate::time::now()).whole_days(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_interfaces_are_dialled_on_loopback() {
        assert_eq!(dial_address(":443"), Some("127.0.0.1:443".parse().unwrap()));
        assert_eq!(
            dial_address("[::]:8443"),
            Some("[::1]:8443".parse().unwrap())
        );
        assert_eq!(
            dial_address("10.1.2.3:443"),
            Some("10.1.2.3:443".parse().unwrap())
        );
        assert_eq!(dial_address("nonsense"), None);
    }

    #[test]
    fn a_certificate_is_described_by_its_names_issuer_and_dates() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["home.example".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let described = describe(cert.der()).unwrap();
        assert_eq!(described.names, ["home.example"]);
        assert!(described.days_left > 300, "{described:?}");
    }
}
