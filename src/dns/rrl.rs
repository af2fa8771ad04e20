//! Response-rate limiting for the world's UDP answers, in the manner of BIND's and Knot's RRL:
//! a forged source can make picd send only so many answers a second to one victim network.
//! Answers are accounted per client network (/24 for IPv4, /56 for IPv6) and kind: positive
//! answers per name and type, NXDOMAIN, NODATA and referrals, and errors each per network.
//! Each account earns `rate` answers a second (never more than `rate` saved) and may fall
//! `window` seconds of answers into debt; an answer over the limit is dropped, except every
//! `slip`-th, which goes out truncated and empty so a real client retries over TCP (where a
//! forged source cannot follow).
//!
//! The table is a fixed array indexed by a keyed hash, one per UDP thread: a flood of distinct
//! sources overwrites accounts (and so gets a fresh allowance) but never grows memory.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::time::Instant;

/// Accounts per UDP thread (16 bytes each).
const TABLE_SIZE: usize = 1 << 15;
const HEADER: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Drop,
    Slip,
}

#[derive(Clone, Copy, Default)]
struct Account {
    key: u64,
    second: u32,
    balance: i32,
}

pub struct RateLimiter {
    rate: i32,
    window: i32,
    slip: u32,
    limited: u32,
    table: Vec<Account>,
    started: Instant,
    now: u32,
    hasher: foldhash::fast::RandomState,
}

impl RateLimiter {
    /// `None` when the rate is 0 (limiting off).
    pub fn new(rate: u32, window: u32, slip: u32) -> Option<Self> {
        (rate > 0).then(|| RateLimiter {
            rate: rate.min(1 << 20) as i32,
            window: window.clamp(1, 3600) as i32,
            slip,
            limited: 0,
            table: vec![Account::default(); TABLE_SIZE],
            started: Instant::now(),
            now: 0,
            hasher: foldhash::fast::RandomState::default(),
        })
    }

    /// Reads the clock; once per batch.
    pub fn tick(&mut self) {
        self.now = self.started.elapsed().as_secs() as u32;
    }

    /// Accounts one answer `reply` to `query` for `client`.
    pub fn check(&mut self, client: IpAddr, reply: &[u8]) -> Verdict {
        let key = self.key(client, reply);
        let account = &mut self.table[(key as usize) & (TABLE_SIZE - 1)];
        if account.key != key {
            *account = Account {
                key,
                second: self.now,
                balance: self.rate,
            };
        } else if account.second != self.now {
            let earned = i64::from(self.now.wrapping_sub(account.second)) * i64::from(self.rate);
            account.balance =
                (i64::from(account.balance) + earned).min(i64::from(self.rate)) as i32;
            account.second = self.now;
        }
        account.balance = (account.balance - 1).max(-self.rate * self.window);
        if account.balance >= 0 {
            return Verdict::Pass;
        }
        self.limited = self.limited.wrapping_add(1);
        match self.slip {
            0 => Verdict::Drop,
            n if self.limited.is_multiple_of(n) => Verdict::Slip,
            _ => Verdict::Drop,
        }
    }

    fn key(&self, client: IpAddr, reply: &[u8]) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        match client {
            IpAddr::V4(v4) => hasher.write(&v4.octets()[..3]),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => hasher.write(&v4.octets()[..3]),
                None => hasher.write(&v6.octets()[..7]),
            },
        }
        let rcode = reply.get(3).map_or(0xff, |b| b & 0x0f);
        let answers = reply
            .get(6..8)
            .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
        let kind: u8 = match (rcode, answers) {
            (0, n) if n > 0 => 0,
            (0, _) => 1,
            (3, _) => 2,
            _ => 3,
        };
        hasher.write_u8(kind);
        if kind == 0 {
            hash_question(&mut hasher, reply);
        }
        hasher.finish()
    }
}

/// Hashes the reply's question (name in lower case, then type) when it has one.
fn hash_question(hasher: &mut impl Hasher, reply: &[u8]) {
    let mut at = HEADER;
    while let Some(&len) = reply.get(at) {
        if len == 0 || len & 0xc0 != 0 || at > HEADER + 255 {
            break;
        }
        let Some(label) = reply.get(at + 1..at + 1 + usize::from(len)) else {
            return;
        };
        for byte in label {
            hasher.write_u8(byte.to_ascii_lowercase());
        }
        hasher.write_u8(b'.');
        at += 1 + usize::from(len);
    }
    if let Some(qtype) = reply.get(at + 1..at + 3) {
        hasher.write(qtype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(rcode: u8, answers: u16) -> Vec<u8> {
        let mut bytes = vec![0u8; HEADER];
        bytes[3] = rcode;
        bytes[6..8].copy_from_slice(&answers.to_be_bytes());
        bytes.extend_from_slice(b"\x03www\x04cell\x00\x00\x01\x00\x01");
        bytes
    }

    #[test]
    fn a_network_gets_its_rate_then_every_slipth_answer_truncated() {
        let mut rrl = RateLimiter::new(5, 2, 2).expect("on");
        rrl.tick();
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        let neighbour: IpAddr = "198.51.100.200".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..9).map(|_| rrl.check(client, &reply(0, 1))).collect();
        assert!(verdicts[..5].iter().all(|v| *v == Verdict::Pass));
        assert_eq!(
            &verdicts[5..],
            [Verdict::Drop, Verdict::Slip, Verdict::Drop, Verdict::Slip]
        );
        // The same /24 shares the account; another network and another kind do not.
        assert_ne!(rrl.check(neighbour, &reply(0, 1)), Verdict::Pass);
        assert_eq!(
            rrl.check("198.51.101.7".parse().unwrap(), &reply(0, 1)),
            Verdict::Pass
        );
        assert_eq!(rrl.check(client, &reply(3, 0)), Verdict::Pass);
    }

    #[test]
    fn ipv6_clients_share_an_account_per_56() {
        let mut rrl = RateLimiter::new(3, 2, 0).expect("on");
        rrl.tick();
        // 2001:db8:aa:bb00::/56: the first seven bytes are 2001:0db8:00aa:bb.
        let client: IpAddr = "2001:db8:aa:bb01::7".parse().unwrap();
        let same_56: IpAddr = "2001:db8:aa:bbff:ffff::1".parse().unwrap();
        let next_56: IpAddr = "2001:db8:aa:bc00::7".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..3).map(|_| rrl.check(client, &reply(0, 1))).collect();
        assert!(verdicts.iter().all(|v| *v == Verdict::Pass), "{verdicts:?}");
        // Another address of the same /56 finds the account spent; the next /56 has its own.
        assert_eq!(rrl.check(same_56, &reply(0, 1)), Verdict::Drop);
        assert_eq!(rrl.check(next_56, &reply(0, 1)), Verdict::Pass);
        // An IPv4-mapped address is accounted as its IPv4 /24.
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:198.51.100.99".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(rrl.check(v4, &reply(0, 1)), Verdict::Pass);
        }
        assert_eq!(rrl.check(mapped, &reply(0, 1)), Verdict::Drop);
    }

    #[test]
    fn off_at_rate_zero() {
        assert!(RateLimiter::new(0, 15, 2).is_none());
    }
}
