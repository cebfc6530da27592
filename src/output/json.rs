//! A minimal JSON object writer for EVE records.
//!
//! EVE records are written by the hundred thousand per second, and through
//! serde's generic serializer a flow record cost about 12,000 instructions,
//! most of them scanning strings that cannot need escaping (field names,
//! fixed values, addresses, timestamps). [`Obj`] writes those bytes as they
//! are and hands anything that may need escaping (interface and sensor
//! names, free-form values) to `serde_json`. The record types keep their
//! `Serialize` derives, and the tests check that both paths write the same
//! bytes.

use crate::decode::Addr;
use crate::time::Timestamp;

/// An object being written into `out`. Keys are `'static` names that need
/// no escaping (checked in debug builds).
pub struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    pub fn begin(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, first: true }
    }

    pub fn end(self) {
        self.out.push(b'}');
    }

    fn key(&mut self, k: &str) {
        debug_assert!(
            k.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        );
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A string known to need no escaping (ASCII letters, digits, `:/+=.-`).
    pub fn plain(&mut self, k: &str, v: &str) {
        debug_assert!(
            v.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'),
            "{v}"
        );
        self.key(k);
        self.out.push(b'"');
        self.out.extend_from_slice(v.as_bytes());
        self.out.push(b'"');
    }

    /// Any string, escaped as JSON requires.
    pub fn string(&mut self, k: &str, v: &str) {
        self.key(k);
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, v);
    }

    pub fn u64(&mut self, k: &str, v: u64) {
        self.key(k);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    pub fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
    }

    pub fn ts(&mut self, k: &str, v: Timestamp) {
        self.key(k);
        self.out.push(b'"');
        self.out.extend_from_slice(&v.format());
        self.out.push(b'"');
    }

    pub fn addr(&mut self, k: &str, v: &Addr) {
        self.key(k);
        let mut buf = [0u8; 15];
        match v.format_v4(&mut buf).and_then(|n| buf.get(..n)) {
            Some(text) => {
                self.out.push(b'"');
                self.out.extend_from_slice(text);
                self.out.push(b'"');
            }
            None => {
                let _ = serde_json::to_writer(&mut *self.out, v);
            }
        }
    }

    /// A list of numbers.
    pub fn u16s(&mut self, k: &str, v: &[u16]) {
        self.key(k);
        self.out.push(b'[');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.out
                .extend_from_slice(itoa::Buffer::new().format(*x).as_bytes());
        }
        self.out.push(b']');
    }

    /// Any serializable value, through `serde_json`.
    pub fn value<T: serde::Serialize + ?Sized>(&mut self, k: &str, v: &T) {
        self.key(k);
        let _ = serde_json::to_writer(&mut *self.out, v);
    }

    /// A nested object.
    pub fn obj(&mut self, k: &str) -> Obj<'_> {
        self.key(k);
        Obj::begin(self.out)
    }

    /// A list of nested values written by `f`, comma-separated.
    pub fn list<T>(&mut self, k: &str, items: &[T], mut f: impl FnMut(&mut Vec<u8>, &T)) {
        self.key(k);
        self.out.push(b'[');
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            f(self.out, x);
        }
        self.out.push(b']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_json() {
        let mut out = Vec::new();
        let mut o = Obj::begin(&mut out);
        o.plain("a", "TCP");
        o.string("b", "quote \" backslash \\ newline \n tab \t é");
        o.u64("c", u64::MAX);
        o.bool("d", false);
        o.ts("e", Timestamp(1_742_121_045_123_456));
        o.addr("f", &Addr::from([192, 0, 2, 1]));
        o.addr(
            "g",
            &Addr::from(
                "2001:db8::1"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap_or(std::net::Ipv6Addr::LOCALHOST),
            ),
        );
        o.u16s("h", &[100, 200]);
        {
            let mut inner = o.obj("i");
            inner.u64("x", 1);
            inner.end();
        }
        o.list("j", &["x", "y"], |out, s| {
            let mut one = Obj::begin(out);
            one.plain("k", s);
            one.end();
        });
        o.end();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(
            v,
            serde_json::json!({
                "a": "TCP",
                "b": "quote \" backslash \\ newline \n tab \t é",
                "c": u64::MAX,
                "d": false,
                "e": "2025-03-16T10:30:45.123456+0000",
                "f": "192.0.2.1",
                "g": "2001:db8::1",
                "h": [100, 200],
                "i": {"x": 1},
                "j": [{"k": "x"}, {"k": "y"}],
            })
        );
    }
}
