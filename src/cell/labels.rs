//! Validated names: a `DnsLabel` and a `DomainName` can only hold values that passed
//! `dns_label` and `domain_name`, whether they came from a request, an answers file or the
//! store.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use super::settings::{dns_label, domain_name};

/// One lowercase DNS label (1 to 63 of a-z, 0-9 and '-', no '-' at either end).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DnsLabel(String);

impl DnsLabel {
    pub fn parse(text: &str) -> Result<DnsLabel, String> {
        dns_label(text).map(|_| DnsLabel(text.to_string()))
    }
}

/// A lowercase domain name of two labels or more, without the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(text: &str) -> Result<DomainName, String> {
        domain_name(text).map(DomainName)
    }
}

macro_rules! text_type {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(text: String) -> Result<Self, String> {
                <$t>::parse(&text)
            }
        }
        impl From<$t> for String {
            fn from(value: $t) -> String {
                value.0
            }
        }
        impl $t {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<String> for $t {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

text_type!(DnsLabel);
text_type!(DomainName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_values_are_held() {
        assert_eq!(DomainName::parse("Home.Example.").unwrap(), *"home.example");
        assert!(DomainName::parse("example").is_err());
        assert!(DnsLabel::parse("-bad").is_err());
        let parsed: Result<DomainName, _> = serde_json::from_str("\"a..b\"");
        assert!(parsed.is_err());
        let label: DnsLabel = serde_json::from_str("\"home\"").unwrap();
        assert_eq!(serde_json::to_string(&label).unwrap(), "\"home\"");
    }
}
