//! Reputation feed formats.
//!
//! - `list`: one address or CIDR per line, the first word of the line;
//!   `#` and `;` start comments (Spamhaus DROP's `1.2.3.0/24 ; SBL123` reads
//!   as its network).
//! - `iprep`: Suricata's `ip,category,score` (score 0-127), with a
//!   categories file of `id,short name,description` lines.
//! - `csv`: a chosen column (1-based number, or a header name) of a CSV
//!   file with an optional header line and delimiter.
//!
//! A bad line is counted and skipped (the first few are kept, with file and
//! line, for the log); it never fails the feed.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::io::BufRead;

use crate::detect::prefix::addr_u128;
use crate::policy::Cidr;

/// Bad lines kept per load for the log.
const KEEP_ERRORS: usize = 5;

/// Which column of a CSV feed holds the address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Column {
    /// 1-based.
    Index(usize),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    List,
    Iprep {
        /// id → short name.
        categories: HashMap<u8, String>,
    },
    Csv {
        column: Column,
        delimiter: u8,
        header: bool,
    },
}

/// One listed network, as [`parse`] collects it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// 128-bit base and prefix (IPv4 mapped).
    pub base: u128,
    pub prefix: u8,
    /// The line's own category (iprep), else the feed's.
    pub category: Option<String>,
    /// The line's own score (iprep), else the feed's.
    pub score: Option<u8>,
}

/// One listed network as [`parse_with`] hands it over, borrowing the
/// category name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// 128-bit base and prefix (IPv4 mapped).
    pub base: u128,
    pub prefix: u8,
    /// The line's own category (iprep), else the feed's.
    pub category: Option<&'a str>,
    /// The line's own score (iprep), else the feed's.
    pub score: Option<u8>,
}

/// The bad lines of one read of a feed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub bad_lines: u64,
    /// `file:line: reason` of the first bad lines.
    pub errors: Vec<String>,
}

impl Summary {
    fn bad(&mut self, file: &str, line: usize, why: String) {
        self.bad_lines += 1;
        if self.errors.len() < KEEP_ERRORS {
            self.errors.push(format!("{file}:{line}: {why}"));
        }
    }
}

/// What one read of a feed gave, collected.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub entries: Vec<Listed>,
    pub bad_lines: u64,
    /// `file:line: reason` of the first bad lines.
    pub errors: Vec<String>,
}

fn net(s: &str) -> Result<(u128, u8), String> {
    let c = Cidr::parse(s.trim())?;
    Ok((addr_u128(&c.addr), c.prefix))
}

/// Parses an iprep categories file (`id,short name,description`).
pub fn parse_categories(text: &str, file: &str) -> Result<HashMap<u8, String>, String> {
    let mut m = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let mut parts = l.splitn(3, ',');
        let (Some(id), Some(name)) = (parts.next(), parts.next()) else {
            return Err(format!("{file}:{}: expected `id,name,description`", i + 1));
        };
        let id: u8 = id
            .trim()
            .parse()
            .map_err(|_| format!("{file}:{}: `{}` is not a category id", i + 1, id.trim()))?;
        m.insert(id, name.trim().to_string());
    }
    Ok(m)
}

/// Parses a feed's bytes and collects the entries.
pub fn parse(bytes: &[u8], format: &Format, file: &str) -> Parsed {
    let mut entries = Vec::new();
    let s = parse_with(bytes, format, file, |l| {
        entries.push(Listed {
            base: l.base,
            prefix: l.prefix,
            category: l.category.map(str::to_string),
            score: l.score,
        });
    });
    Parsed {
        entries,
        bad_lines: s.bad_lines,
        errors: s.errors,
    }
}

/// Calls `f` for each line of a text feed read from `r` (1-based line
/// number, the line with its end and invalid UTF-8 replaced). A read error
/// ends the feed and is counted as a bad line.
fn each_line(
    mut r: impl BufRead,
    file: &str,
    out: &mut Summary,
    mut f: impl FnMut(usize, &str, &mut Summary),
) {
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                out.bad(file, n + 1, format!("read error: {e}"));
                break;
            }
        }
        n += 1;
        let line = String::from_utf8_lossy(&buf);
        let line = line.strip_suffix('\n').unwrap_or(&line);
        f(n, line.strip_suffix('\r').unwrap_or(line), out);
    }
}

/// Parses a feed read from `r`, handing each listed network to `on` as it
/// is read (nothing is collected, so a feed of any size is read in a
/// buffer's worth of memory); returns the bad lines.
pub fn parse_with(
    r: impl std::io::Read,
    format: &Format,
    file: &str,
    mut on: impl FnMut(Line<'_>),
) -> Summary {
    let mut out = Summary::default();
    match format {
        Format::List => {
            let r = std::io::BufReader::with_capacity(64 << 10, r);
            each_line(r, file, &mut out, |n, raw, out| {
                let data = raw.split(['#', ';']).next().unwrap_or("").trim();
                let Some(word) = data
                    .split([' ', '\t', ','])
                    .next()
                    .filter(|w| !w.is_empty())
                else {
                    return;
                };
                match net(word) {
                    Ok((base, prefix)) => on(Line {
                        base,
                        prefix,
                        category: None,
                        score: None,
                    }),
                    Err(e) => out.bad(file, n, e),
                }
            });
        }
        Format::Iprep { categories } => {
            let r = std::io::BufReader::with_capacity(64 << 10, r);
            each_line(r, file, &mut out, |n, raw, out| {
                let l = raw.trim();
                if l.is_empty() || l.starts_with('#') {
                    return;
                }
                let mut f = l.split(',').map(str::trim);
                let (Some(ip), Some(cat), Some(score), None) =
                    (f.next(), f.next(), f.next(), f.next())
                else {
                    out.bad(file, n, "expected `ip,category,score`".into());
                    return;
                };
                let parsed = net(ip).and_then(|(base, prefix)| {
                    let id: u8 = cat
                        .parse()
                        .map_err(|_| format!("`{cat}` is not a category id"))?;
                    let name = categories
                        .get(&id)
                        .ok_or_else(|| format!("category {id} is not in the categories file"))?;
                    let score: u8 = score
                        .parse()
                        .ok()
                        .filter(|s| *s <= 127)
                        .ok_or_else(|| format!("score `{score}` is not 0-127"))?;
                    Ok(Line {
                        base,
                        prefix,
                        category: Some(name.as_str()),
                        score: Some(score),
                    })
                });
                match parsed {
                    Ok(e) => on(e),
                    Err(e) => out.bad(file, n, e),
                }
            });
        }
        Format::Csv {
            column,
            delimiter,
            header,
        } => {
            let mut rdr = csv::ReaderBuilder::new()
                .delimiter(*delimiter)
                .has_headers(*header)
                .flexible(true)
                .comment(Some(b'#'))
                .buffer_capacity(64 << 10)
                .from_reader(r);
            let idx = match column {
                Column::Index(n) => n.saturating_sub(1),
                Column::Name(name) => {
                    let found = rdr
                        .headers()
                        .ok()
                        .and_then(|h| h.iter().position(|c| c.trim() == name));
                    match found {
                        Some(i) => i,
                        None => {
                            out.bad(file, 1, format!("no column named `{name}` in the header"));
                            return out;
                        }
                    }
                }
            };
            let mut rec = csv::StringRecord::new();
            loop {
                match rdr.read_record(&mut rec) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line() as usize);
                        let io = e.is_io_error();
                        out.bad(file, line, e.to_string());
                        if io {
                            break;
                        }
                        continue;
                    }
                }
                let line = rec.position().map_or(0, |p| p.line() as usize);
                let Some(field) = rec.get(idx) else {
                    out.bad(file, line, format!("no column {}", idx + 1));
                    continue;
                };
                if field.trim().is_empty() {
                    continue;
                }
                match net(field) {
                    Ok((base, prefix)) => on(Line {
                        base,
                        prefix,
                        category: None,
                        score: None,
                    }),
                    Err(e) => out.bad(file, line, e),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn ip(s: &str) -> (u128, u8) {
        net(s).unwrap()
    }

    #[test]
    fn plain_lists() {
        let p = parse(
            b"# header\n192.0.2.1\n198.51.100.0/24 ; SBL123\n\n2001:db8::/32 # doc\nnot-an-ip\n  203.0.113.7  \n",
            &Format::List,
            "f.txt",
        );
        let got: Vec<(u128, u8)> = p.entries.iter().map(|e| (e.base, e.prefix)).collect();
        assert_eq!(
            got,
            vec![
                ip("192.0.2.1"),
                ip("198.51.100.0/24"),
                ip("2001:db8::/32"),
                ip("203.0.113.7")
            ]
        );
        assert_eq!(p.bad_lines, 1);
        assert!(p.errors[0].starts_with("f.txt:6: "), "{:?}", p.errors);
    }

    #[test]
    fn iprep_with_categories() {
        let cats = parse_categories("1,BadHosts,Known bad hosts\n2,Tor,Tor exits\n", "c").unwrap();
        let p = parse(
            b"192.0.2.1,1,100\n192.0.2.2,2,30\n192.0.2.3,9,30\n192.0.2.4,1,200\n192.0.2.5,1\n",
            &Format::Iprep { categories: cats },
            "r.list",
        );
        assert_eq!(p.entries.len(), 2);
        assert_eq!(p.entries[0].category.as_deref(), Some("BadHosts"));
        assert_eq!(p.entries[1].score, Some(30));
        assert_eq!(p.bad_lines, 3);
        assert!(parse_categories("x,y,z\n", "c").is_err());
    }

    #[test]
    fn csv_by_index_or_name() {
        let text = b"first_seen,dst_ip,port\n2024-01-01,192.0.2.9,443\n2024-01-02,\"198.51.100.3\",80\n2024-01-03,bogus,1\n";
        let p = parse(
            text,
            &Format::Csv {
                column: Column::Name("dst_ip".into()),
                delimiter: b',',
                header: true,
            },
            "c.csv",
        );
        assert_eq!(p.entries.len(), 2);
        assert_eq!((p.entries[1].base, p.entries[1].prefix), ip("198.51.100.3"));
        assert_eq!(p.bad_lines, 1);
        assert!(p.errors[0].starts_with("c.csv:4: "), "{:?}", p.errors);
        let p = parse(
            b"# comment\n192.0.2.1;x\n192.0.2.2;y\n",
            &Format::Csv {
                column: Column::Index(1),
                delimiter: b';',
                header: false,
            },
            "c.csv",
        );
        assert_eq!(p.entries.len(), 2);
        let p = parse(
            text,
            &Format::Csv {
                column: Column::Name("nope".into()),
                delimiter: b',',
                header: true,
            },
            "c.csv",
        );
        assert_eq!((p.entries.len(), p.bad_lines), (0, 1));
    }
}
