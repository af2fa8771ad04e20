//! Any UTF-8 text as a BIND zone file to picd's import, and the export of what it imported
//! back through the import (see `picd_fuzz::check_zone_file`).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    if let Ok(text) = std::str::from_utf8(bytes) {
        picd_fuzz::check_zone_file(text);
    }
});
