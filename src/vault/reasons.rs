//! Revocation reasons: stored and answered by their snake_case API names, accepted also as
//! RFC 5280 spells them (`keyCompromise`, `cACompromise`, ...), which is what tools and
//! other CAs' documentation use.

use rcgen::RevocationReason;

/// (API name, RFC 5280 name, CRL reason code). `removeFromCRL` and `aACompromise` are left
/// out: the first only makes sense in delta CRLs, the second for attribute authorities.
const REASONS: &[(&str, &str, RevocationReason)] = &[
    ("unspecified", "unspecified", RevocationReason::Unspecified),
    (
        "key_compromise",
        "keyCompromise",
        RevocationReason::KeyCompromise,
    ),
    (
        "ca_compromise",
        "cACompromise",
        RevocationReason::CaCompromise,
    ),
    (
        "affiliation_changed",
        "affiliationChanged",
        RevocationReason::AffiliationChanged,
    ),
    ("superseded", "superseded", RevocationReason::Superseded),
    (
        "cessation_of_operation",
        "cessationOfOperation",
        RevocationReason::CessationOfOperation,
    ),
    (
        "certificate_hold",
        "certificateHold",
        RevocationReason::CertificateHold,
    ),
    (
        "privilege_withdrawn",
        "privilegeWithdrawn",
        RevocationReason::PrivilegeWithdrawn,
    ),
];

/// The API name of a reason given in either spelling (the RFC's exactly, or case-insensitively
/// since `CACompromise` and `caCompromise` are common too).
pub fn parse(given: &str) -> Option<&'static str> {
    REASONS
        .iter()
        .find(|(api, rfc, _)| given == *api || given.eq_ignore_ascii_case(rfc))
        .map(|(api, _, _)| *api)
}

/// The CRL reason code of a stored (API) name.
pub fn code(api_name: &str) -> Option<RevocationReason> {
    REASONS
        .iter()
        .find(|(api, _, _)| *api == api_name)
        .map(|(_, _, code)| *code)
}

/// Every accepted name, both spellings, for the error message.
pub fn accepted() -> String {
    REASONS
        .iter()
        .map(|(api, rfc, _)| {
            if api == rfc {
                (*api).to_string()
            } else {
                format!("{api} ({rfc})")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings() {
        assert_eq!(parse("keyCompromise"), Some("key_compromise"));
        assert_eq!(parse("key_compromise"), Some("key_compromise"));
        assert_eq!(parse("CACompromise"), Some("ca_compromise"));
        assert_eq!(parse("superseded"), Some("superseded"));
        assert_eq!(parse("removeFromCRL"), None);
        assert_eq!(parse("bored"), None);
        assert!(accepted().contains("key_compromise (keyCompromise)"));
    }
}
