//! `open_proxy`: a home web server receives requests in absolute form
//! (`GET http://...`, `CONNECT host:port`) from outside clients, and/or
//! opens outbound web connections within seconds of such a request.
//!
//! Only the request line of a flow's first client payload is parsed.

use serde_json::json;

use super::bounded::{BoundedMap, Expiring, Recent, Usage};
use super::{Alert, Endpoint, Kind, Reported, ts};
use crate::config::OpenProxyConfig;
use crate::decode::{Addr, PROTO_TCP};
use crate::policy::Policy;
use crate::time::Timestamp;

/// A proxy-style request line: (method, target).
pub fn proxy_request(payload: &[u8]) -> Option<(String, String)> {
    let line = payload.split(|b| *b == b'\r' || *b == b'\n').next()?;
    let line = line.get(..line.len().min(2048))?;
    let text = std::str::from_utf8(line).ok()?;
    let mut parts = text.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if !version.starts_with("HTTP/")
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
    {
        return None;
    }
    let lower = target.to_ascii_lowercase();
    let absolute = lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("ftp://");
    let connect = method == "CONNECT" && !target.starts_with('/') && target.contains(':');
    (absolute || connect).then(|| (method.to_string(), target.chars().take(200).collect()))
}

/// Proxy requests a host keeps the times of.
const REQUESTS_KEPT: usize = 4;

#[derive(Debug)]
struct ProxyState {
    /// The last requests' times, newest first (they may be processed out
    /// of packet order: a request and the connection it relays are flows of
    /// two host pairs, so of two workers).
    request_times: Recent<(), REQUESTS_KEPT>,
    last_seen: Timestamp,
    requests: u64,
    relays: u64,
    client: Addr,
    port: u16,
    reported: Reported,
    relay_reported: Reported,
}

impl Expiring for ProxyState {
    fn last_seen(&self) -> Timestamp {
        self.last_seen
    }
}

pub struct ProxyDetector {
    map: BoundedMap<Addr, ProxyState>,
    cfg: OpenProxyConfig,
}

impl ProxyDetector {
    pub fn new(cfg: &crate::config::DetectConfig) -> Self {
        ProxyDetector {
            map: BoundedMap::tracker(cfg, cfg.open_proxy.window.0),
            cfg: cfg.open_proxy.clone(),
        }
    }

    pub fn sweep(&self, now: Timestamp) {
        self.map.sweep(now);
    }

    pub fn usage(&self) -> Usage {
        self.map.usage()
    }

    /// The first client payload of a flow from `client` to `server:port`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_request(
        &self,
        policy: &Policy,
        client: Addr,
        server: Addr,
        port: u16,
        payload: &[u8],
        now: Timestamp,
        out: &mut Vec<Alert>,
    ) {
        // An outside client, or any client of a port the server publishes
        // to the outside: an inside client of an inside proxy that is not
        // published is the usual corporate proxy.
        if !self.cfg.enabled
            || !policy.is_home(&server)
            || (policy.is_home(&client) && !policy.publishes(&server, PROTO_TCP, port))
        {
            return;
        }
        let Some((method, target)) = proxy_request(payload) else {
            return;
        };
        let make = || ProxyState {
            request_times: Recent::default(),
            last_seen: now,
            requests: 0,
            relays: 0,
            client,
            port,
            reported: Reported::default(),
            relay_reported: Reported::default(),
        };
        self.map.update(&server, now, make, |s| {
            s.request_times.note(now, ());
            s.last_seen = s.last_seen.max(now);
            s.requests += 1;
            s.client = client;
            s.port = port;
            if s.reported.due(now, self.cfg.window.0, s.requests) {
                s.reported.mark(now, s.requests);
                out.push(
                    Alert::new(
                        Kind::OpenProxy,
                        2,
                        Endpoint::host(client),
                        Endpoint::service(server, port),
                    )
                    .with("method", json!([method]))
                    .with("request_target", json!([target]))
                    .with("requests", s.requests)
                    .with(
                        "direction",
                        json!([policy.direction(&client, &server).as_str()]),
                    ),
                );
            }
        });
    }

    /// `host` opened a connection to `dst:port` at `now`: a relay if it
    /// follows a proxy request within `relay_window`. Returns whether it
    /// was counted. Judged at the SYN, and again when a connection not
    /// counted then ends: the request it relays may have been processed
    /// after its SYN (another pair's flow, so maybe another worker's);
    /// packet times decide.
    #[allow(clippy::too_many_arguments)]
    pub fn on_outbound(
        &self,
        policy: &Policy,
        host: Addr,
        dst: Addr,
        port: u16,
        now: Timestamp,
        out: &mut Vec<Alert>,
    ) -> bool {
        if !self.cfg.enabled || !matches!(port, 80 | 443) || policy.is_home(&dst) {
            return false;
        }
        self.map
            .with_existing(&host, |s| {
                let Some((request, ())) = s.request_times.before(now) else {
                    return false;
                };
                if now.since(request) > self.cfg.relay_window.0 {
                    return false;
                }
                s.relays += 1;
                s.last_seen = s.last_seen.max(now);
                if s.relay_reported.due(now, self.cfg.window.0, s.relays) {
                    s.relay_reported.mark(now, s.relays);
                    let mut a = Alert::new(
                        Kind::OpenProxy,
                        1,
                        Endpoint::host(s.client),
                        Endpoint::service(host, s.port),
                    )
                    .with("requests", s.requests)
                    .with("relayed_connections", s.relays)
                    .with("relayed_to", json!([format!("{dst}:{port}")]))
                    .with("seconds_after_request", now.since(request).0 as f64 / 1e6)
                    .with("last_request", ts(request));
                    // Raised by the outbound connection, about the inbound one.
                    a.on_flow = false;
                    out.push(a);
                }
                true
            })
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            proxy_request(b"GET http://198.51.100.7/ HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET".into(), "http://198.51.100.7/".into()))
        );
        assert_eq!(
            proxy_request(b"CONNECT 198.51.100.7:443 HTTP/1.1\r\n"),
            Some(("CONNECT".into(), "198.51.100.7:443".into()))
        );
        assert_eq!(proxy_request(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(
            proxy_request(b"GET http://x/"),
            None,
            "no version: not a request line"
        );
        assert_eq!(proxy_request(b"\x16\x03\x01\x02\x00"), None);
        assert_eq!(proxy_request(b""), None);
    }

    fn detector(config: &str) -> (ProxyDetector, crate::config::Config) {
        let c = crate::config::Config::parse(config, "t.toml").unwrap_or_default();
        (ProxyDetector::new(&c.detect), c)
    }

    fn a(s: &str) -> Addr {
        Addr::from(s.parse::<std::net::IpAddr>().unwrap_or([0, 0, 0, 0].into()))
    }

    /// Outside clients of any home server, and inside clients of a port the
    /// server publishes, are reported; an inside client of an unpublished
    /// inside proxy (the corporate proxy) is not. IPv4 and IPv6.
    #[test]
    fn who_may_use_a_proxy() {
        let (d, c) = detector(
            "[[hosts]]\naddr = [\"172.16.5.11\", \"fd00::11\"]\nservices = [\"tcp/8080\"]\n",
        );
        let req = b"CONNECT 198.51.100.149:443 HTTP/1.1\r\n\r\n";
        let mut out = Vec::new();
        d.on_request(
            &c.policy,
            a("10.1.1.1"),
            a("10.1.1.3"),
            3128,
            req,
            Timestamp(0),
            &mut out,
        );
        assert!(out.is_empty(), "inside client, unpublished proxy");
        d.on_request(
            &c.policy,
            a("10.1.1.1"),
            a("172.16.5.11"),
            8080,
            req,
            Timestamp(1),
            &mut out,
        );
        d.on_request(
            &c.policy,
            a("2001:db8::90"),
            a("fd00::12"),
            3128,
            req,
            Timestamp(2),
            &mut out,
        );
        assert_eq!(out.len(), 2, "{out:?}");
        // The relay that follows raises it to severity 1.
        d.on_outbound(
            &c.policy,
            a("fd00::12"),
            a("2001:db8::149"),
            443,
            Timestamp(3),
            &mut out,
        );
        assert_eq!((out.len(), out[2].severity), (3, 1));
    }

    /// The relayed connection's SYN processed before the request it
    /// follows (two host pairs, so maybe two workers): nothing then; judged
    /// again when it ends, by packet times, it is the relay. A connection
    /// before any request, or after the window, is none.
    #[test]
    fn a_relay_processed_before_its_request_is_found_when_it_ends() {
        let (d, c) = detector(
            "home_nets = [\"10.20.0.0/16\"]\n[[hosts]]\naddr = \"10.20.1.10\"\nservices = [\"tcp/80\"]\n",
        );
        let (client, proxy, dst) = (a("203.0.113.90"), a("10.20.1.10"), a("198.51.100.7"));
        let secs = |s: u64| Timestamp(1_700_000_000_000_000 + s * 1_000_000);
        let mut out = Vec::new();
        d.on_request(
            &c.policy,
            client,
            proxy,
            80,
            b"GET / HTTP/1.1\r\n\r\n",
            secs(0),
            &mut out,
        );
        let relay_syn = Timestamp(secs(10).0 + 10_000);
        assert!(!d.on_outbound(&c.policy, proxy, dst, 80, relay_syn, &mut out));
        assert!(out.is_empty(), "no proxy request yet: {out:?}");
        d.on_request(
            &c.policy,
            client,
            proxy,
            80,
            b"GET http://198.51.100.7/ HTTP/1.1\r\n\r\n",
            secs(10),
            &mut out,
        );
        assert_eq!(out.len(), 1, "the request: {out:?}");
        // Its end: judged again at the time of its SYN.
        assert!(d.on_outbound(&c.policy, proxy, dst, 80, relay_syn, &mut out));
        assert_eq!((out.len(), out[1].severity), (2, 1), "{out:?}");
        assert_eq!(out[1].evidence["seconds_after_request"], json!(0.01));
        // Before the request, or long after it: not a relay.
        assert!(!d.on_outbound(&c.policy, proxy, dst, 443, secs(9), &mut out));
        assert!(!d.on_outbound(&c.policy, proxy, dst, 443, secs(100), &mut out));
    }
}
