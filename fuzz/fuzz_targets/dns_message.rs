//! Any bytes as a DNS message to picd's answering code, from peers and the world, over UDP
//! and TCP (see `picd_fuzz::check_message`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| picd_fuzz::check_message(bytes));
