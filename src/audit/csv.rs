//! CSV for the audit export: RFC 4180 quoting, CRLF line ends, and cells that a spreadsheet
//! would run as a formula (leading = + - @, tab or CR) prefixed with a quote mark.

use super::chain::StoredEntry;

pub const HEADER: &str =
    "id,time,actor,action,target_type,target_id,result,client_addr,detail,prev_hash,hash\r\n";

pub fn write_row(out: &mut String, e: &StoredEntry) {
    let detail = e.detail.to_string();
    let id = e.id.to_string();
    let cells = [
        id.as_str(),
        &e.time,
        &e.actor,
        &e.action,
        &e.target_type,
        &e.target_id,
        &e.result,
        &e.client_addr,
        &detail,
        &e.prev_hash,
        &e.hash,
    ];
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_cell(out, cell);
    }
    out.push_str("\r\n");
}

fn write_cell(out: &mut String, cell: &str) {
    let neutralise = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = neutralise || cell.contains([',', '"', '\r', '\n']);
    if quote {
        out.push('"');
    }
    if neutralise {
        out.push('\'');
    }
    for ch in cell.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    if quote {
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::write_cell;

    fn cell(s: &str) -> String {
        let mut out = String::new();
        write_cell(&mut out, s);
        out
    }

    #[test]
    fn quoting_and_formula_neutralisation() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
        assert_eq!(cell("-1+2"), "\"'-1+2\"");
        assert_eq!(cell("@SUM"), "\"'@SUM\"");
    }
}
