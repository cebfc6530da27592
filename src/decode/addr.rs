//! Compact IP addresses for flow keys and host trackers.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 address in 16 bytes; IPv4 is stored IPv4-mapped
/// (`::ffff:a.b.c.d`), so both families share one key type and order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Addr(pub [u8; 16]);

/// An address from its text, for tests: `a("192.0.2.1")`.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn a(s: &str) -> Addr {
    Addr::from(s.parse::<IpAddr>().unwrap())
}

impl Addr {
    pub fn is_v4(&self) -> bool {
        self.0[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
    }

    pub fn to_ip(self) -> IpAddr {
        Ipv6Addr::from(self.0).to_canonical()
    }

    /// The bytes as they appear on the wire (4 for IPv4, 16 for IPv6).
    pub fn wire_bytes(&self) -> &[u8] {
        if self.is_v4() { &self.0[12..] } else { &self.0 }
    }
}

impl From<Ipv4Addr> for Addr {
    fn from(a: Ipv4Addr) -> Self {
        Addr(a.to_ipv6_mapped().octets())
    }
}

impl From<Ipv6Addr> for Addr {
    fn from(a: Ipv6Addr) -> Self {
        Addr(a.octets())
    }
}

impl From<IpAddr> for Addr {
    fn from(a: IpAddr) -> Self {
        match a {
            IpAddr::V4(v4) => v4.into(),
            IpAddr::V6(v6) => v6.into(),
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_ip(), f)
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The decimal text of every octet value (up to three digits) and its
/// length. (Indexing is checked when the constant is evaluated: an index
/// out of range fails the build.)
#[allow(clippy::indexing_slicing)]
const OCTETS: [([u8; 3], usize); 256] = {
    let mut t = [([0u8; 3], 0usize); 256];
    let mut i = 0;
    while i < 256 {
        let (h, d, o) = ((i / 100) as u8, (i / 10 % 10) as u8, (i % 10) as u8);
        t[i] = if i >= 100 {
            ([b'0' + h, b'0' + d, b'0' + o], 3)
        } else if i >= 10 {
            ([b'0' + d, b'0' + o, 0], 2)
        } else {
            ([b'0' + o, 0, 0], 1)
        };
        i += 1;
    }
    t
};

impl Addr {
    /// Writes the dotted quad of an IPv4 address into `buf` (without `fmt`:
    /// addresses are written twice per record); None for IPv6.
    pub fn format_v4(&self, buf: &mut [u8; 15]) -> Option<usize> {
        let [.., a, b, c, d] = self.0;
        if !self.is_v4() {
            return None;
        }
        let mut n = 0;
        for (i, octet) in [a, b, c, d].into_iter().enumerate() {
            if i > 0 {
                *buf.get_mut(n)? = b'.';
                n += 1;
            }
            let (text, len) = OCTETS.get(usize::from(octet))?;
            buf.get_mut(n..n + len)?.copy_from_slice(text.get(..*len)?);
            n += len;
        }
        Some(n)
    }
}

impl serde::Serialize for Addr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 15];
        match self
            .format_v4(&mut buf)
            .and_then(|n| std::str::from_utf8(buf.get(..n)?).ok())
        {
            Some(text) => s.serialize_str(text),
            None => s.collect_str(self),
        }
    }
}

impl From<[u8; 4]> for Addr {
    fn from(a: [u8; 4]) -> Self {
        Ipv4Addr::from(a).into()
    }
}

impl From<[u8; 16]> for Addr {
    fn from(a: [u8; 16]) -> Self {
        Addr(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_like_display() {
        for ip in [
            "0.0.0.0",
            "1.2.3.4",
            "10.0.100.255",
            "192.168.1.1",
            "255.255.255.255",
            "2001:db8::1",
            "::ffff:0:1",
            "::",
        ] {
            let a = Addr::from(
                ip.parse::<IpAddr>()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            );
            assert_eq!(
                serde_json::to_string(&a).unwrap_or_default(),
                format!("\"{a}\""),
                "{ip}"
            );
        }
        for i in 0..=255u8 {
            let a = Addr::from([i, i.wrapping_mul(7), 100, 9]);
            assert_eq!(
                serde_json::to_string(&a).unwrap_or_default(),
                format!("\"{a}\"")
            );
        }
    }
}
