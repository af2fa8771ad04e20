//! The mark on every question picd forwards: an EDNS option from the local/experimental range
//! (RFC 6891 section 9) holding a random value of this process. A question that arrives with
//! it is picd's own come back (an upstream that is picd, directly or through a resolver), and
//! is answered SERVFAIL instead of forwarded again, which would loop until every file
//! descriptor is gone. Pure (std and hickory only), so the fuzz crate compiles it too.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};

pub const LOOP_MARKER_CODE: u16 = 65_317;

/// Looping questions caught, for the stats.
static LOOPS_CAUGHT: AtomicU64 = AtomicU64::new(0);

/// This process's marker option.
pub fn loop_marker() -> EdnsOption {
    EdnsOption::Unknown(LOOP_MARKER_CODE, marker_value().to_vec())
}

fn marker_value() -> &'static [u8; 8] {
    static MARKER: OnceLock<[u8; 8]> = OnceLock::new();
    // RandomState is seeded from the OS's randomness per process.
    MARKER.get_or_init(|| {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            .to_be_bytes()
    })
}

/// Whether `query` is one picd forwarded itself.
pub fn is_own_forward(query: &Message) -> bool {
    let own = query.edns.as_ref().is_some_and(|edns| {
        matches!(
            edns.option(EdnsCode::Unknown(LOOP_MARKER_CODE)),
            Some(EdnsOption::Unknown(_, data)) if data.as_slice() == marker_value()
        )
    });
    if own {
        LOOPS_CAUGHT.fetch_add(1, Ordering::Relaxed);
    }
    own
}

pub fn loops_caught() -> u64 {
    LOOPS_CAUGHT.load(Ordering::Relaxed)
}
