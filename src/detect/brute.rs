//! `brute_force`: one source opening many short sessions to an
//! authentication service; a long session after the burst raises severity
//! (a guess may have worked).

use serde_json::json;

use super::bounded::{BoundedMap, Expiring, Usage};
use super::{Alert, Endpoint, Kind, Reported, ts};
use crate::config::BruteForceConfig;
use crate::decode::Addr;
use crate::time::Timestamp;

#[derive(Debug)]
struct BruteState {
    window_start: Timestamp,
    last_seen: Timestamp,
    short: u64,
    total_short: u64,
    reported: Reported,
    long_reported: bool,
}

impl Expiring for BruteState {
    fn last_seen(&self) -> Timestamp {
        self.last_seen
    }
}

pub struct BruteDetector {
    map: BoundedMap<(Addr, Addr, u16), BruteState>,
    cfg: BruteForceConfig,
}

impl BruteDetector {
    pub fn new(cfg: &crate::config::DetectConfig) -> Self {
        BruteDetector {
            map: BoundedMap::tracker(
                cfg,
                cfg.brute_force
                    .window
                    .0
                    .saturating_add(cfg.brute_force.window.0),
            ),
            cfg: cfg.brute_force.clone(),
        }
    }

    pub fn sweep(&self, now: Timestamp) {
        self.map.sweep(now);
    }

    pub fn usage(&self) -> Usage {
        self.map.usage()
    }

    /// An established TCP session from `client` to `server:port` ended.
    pub fn on_session_end(
        &self,
        client: Addr,
        server: Addr,
        port: u16,
        start: Timestamp,
        end: Timestamp,
        out: &mut Vec<Alert>,
    ) {
        if !self.cfg.enabled || !self.cfg.ports.contains(&port) {
            return;
        }
        let duration = end.since(start);
        let short = duration <= self.cfg.short_session.0;
        let long = duration >= self.cfg.long_session.0;
        let make = || BruteState {
            window_start: end,
            last_seen: end,
            short: 0,
            total_short: 0,
            reported: Reported::default(),
            long_reported: false,
        };
        let update = |s: &mut BruteState| {
            if end.since(s.window_start) >= self.cfg.window.0 {
                s.window_start = end;
                s.short = 0;
                s.reported.count = 0;
            }
            s.last_seen = end;
            let base = |kind_sev: u8, s: &BruteState| {
                Alert::new(
                    Kind::BruteForce,
                    kind_sev,
                    Endpoint::host(client),
                    Endpoint::service(server, port),
                )
                .with("short_sessions", s.short)
                .with("total_short_sessions", s.total_short)
                .with("window_start", ts(s.window_start))
                .with("window_end", ts(end))
            };
            if short {
                s.short += 1;
                s.total_short += 1;
                if s.short >= self.cfg.min_sessions
                    && s.reported.due(end, self.cfg.window.0, s.short)
                {
                    s.reported.mark(end, s.short);
                    out.push(base(2, s));
                }
            } else if long && s.total_short >= self.cfg.min_sessions && !s.long_reported {
                s.long_reported = true;
                out.push(
                    base(1, s)
                        .with("long_session_seconds", duration.0 as f64 / 1e6)
                        .with(
                            "note",
                            json!(["long session after the burst: a guess may have worked"]),
                        ),
                );
            }
        };
        if short {
            self.map.update(&(client, server, port), end, make, update);
        } else {
            self.map.with_existing(&(client, server, port), update);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectConfig;
    use crate::time::Micros;

    #[test]
    fn burst_then_long_session() {
        let d = BruteDetector::new(&DetectConfig::default());
        let (c, s) = (Addr::from([203, 0, 113, 77]), Addr::from([10, 0, 0, 1]));
        let mut out = Vec::new();
        let mut t = Timestamp(0);
        for _ in 0..7 {
            d.on_session_end(
                c,
                s,
                22,
                t,
                t.saturating_add(Micros::from_secs(2)),
                &mut out,
            );
            t = t.saturating_add(Micros::from_secs(3));
        }
        assert!(out.is_empty(), "7 sessions: below 8");
        d.on_session_end(
            c,
            s,
            22,
            t,
            t.saturating_add(Micros::from_secs(2)),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].severity, 2);
        d.on_session_end(
            c,
            s,
            22,
            t,
            t.saturating_add(Micros::from_secs(300)),
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].severity, 1);
        // Other ports are not authentication services.
        for i in 0..20u64 {
            d.on_session_end(c, s, 8080, Timestamp(i), Timestamp(i + 1), &mut out);
        }
        assert_eq!(out.len(), 2);
    }
}
