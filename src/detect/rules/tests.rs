//! The rule set through its public API: crafted packets against rules.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use super::addr::Vars;
use super::*;
use crate::decode::a;
use crate::decode::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::detect::{Alert, Endpoint, Kind};

fn set_with(rules: &str, threshold: Option<&str>) -> RuleSet {
    let home = vec![Cidr::parse("10.0.0.0/8").unwrap()];
    let mut v = BTreeMap::new();
    v.insert("WEB_PORTS".to_string(), "[80,8080]".to_string());
    let vars = Vars::new(&home, &v);
    RuleSet::build(
        &Sources {
            rule_files: vec![("t.rules".into(), rules.into())],
            classification: None,
            threshold: threshold.map(|t| ("t.config".to_string(), t.to_string())),
        },
        &vars,
        10_000,
    )
}

fn set(rules: &str) -> RuleSet {
    let s = set_with(rules, None);
    assert!(s.report().errors.is_empty(), "{:?}", s.report().errors);
    s
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

fn flow(to_server: bool, established: bool, first: bool) -> Option<FlowFacts> {
    Some(FlowFacts {
        to_server,
        established,
        first_in_direction: first,
    })
}

fn tcp<'a>(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    flags: u8,
    payload: &'a [u8],
) -> PacketView<'a> {
    PacketView {
        proto: PROTO_TCP,
        src: a(src),
        dst: a(dst),
        sport,
        dport,
        ttl: 64,
        tcp: Some(TcpFields {
            flags,
            seq: 1000,
            ack: 0,
            window: 1024,
        }),
        icmp: None,
        payload,
        flow: flow(true, false, true),
    }
}

fn udp<'a>(src: &str, sport: u16, dst: &str, dport: u16, payload: &'a [u8]) -> PacketView<'a> {
    PacketView {
        proto: PROTO_UDP,
        tcp: None,
        ..tcp(src, sport, dst, dport, 0, payload)
    }
}

/// Runs packets one second apart; returns the sids alerted per packet.
fn run(s: &RuleSet, pkts: &[PacketView<'_>]) -> Vec<Vec<u32>> {
    let mut bits = FlowBits::default();
    pkts.iter()
        .enumerate()
        .map(|(i, p)| {
            let mut out = Vec::new();
            s.match_packet(
                p,
                Some(&mut bits),
                Timestamp(i as u64 * 1_000_000),
                &mut out,
            );
            out.iter().map(|x| x.rule.as_ref().unwrap().sid).collect()
        })
        .collect()
}

fn sids(s: &RuleSet, p: PacketView<'_>) -> Vec<u32> {
    run(s, &[p]).remove(0)
}

#[test]
fn header_options_select_packets() {
    let s = set(
        "alert tcp $EXTERNAL_NET any -> $HOME_NET 22 (msg:\"ssh syn\"; flow:to_server; flags:S,CE; sid:1;)\n\
         alert tcp any any -> any $WEB_PORTS (msg:\"web data\"; flow:established,to_server; dsize:>0; sid:2;)\n\
         alert udp any any -> any !53 (msg:\"ttl\"; ttl:<10; sid:3;)\n\
         alert icmp any any -> any any (msg:\"echo\"; itype:8; icode:0; sid:4;)\n\
         alert tcp any any -> any any (msg:\"win\"; window:!1024; ack:0; seq:1000; sid:5;)\n\
         alert ip any any -> any any (msg:\"igmp\"; ip_proto:igmp; sid:6;)\n",
    );
    assert_eq!(
        sids(&s, tcp("8.8.8.8", 4000, "10.0.0.1", 22, SYN, b"")),
        vec![1]
    );
    assert_eq!(
        sids(&s, tcp("8.8.8.8", 4000, "10.0.0.1", 22, SYN | ACK, b"")),
        vec![] as Vec<u32>
    );
    assert_eq!(
        sids(&s, tcp("10.0.0.2", 4000, "10.0.0.1", 22, SYN, b"")),
        vec![] as Vec<u32>
    );
    assert_eq!(
        sids(&s, tcp("8.8.8.8", 4000, "10.0.0.1", 22, SYN | 0xc0, b"")),
        vec![1],
        "ECN bits ignored"
    );
    let mut p = tcp("10.0.0.2", 4000, "1.1.1.1", 8080, PSH | ACK, b"GET /");
    assert_eq!(sids(&s, p), vec![] as Vec<u32>, "not established yet");
    p.flow = flow(true, true, false);
    assert_eq!(sids(&s, p), vec![2]);
    p.flow = flow(false, true, false);
    assert_eq!(sids(&s, p), vec![] as Vec<u32>, "to_client");
    let mut u = udp("10.0.0.2", 5000, "1.1.1.1", 123, b"x");
    u.ttl = 5;
    assert_eq!(sids(&s, u), vec![3]);
    u.dport = 53;
    assert_eq!(sids(&s, u), vec![] as Vec<u32>);
    let mut i = udp("10.0.0.2", 0, "1.1.1.1", 0, b"");
    i.proto = PROTO_ICMP;
    i.icmp = Some((8, 0));
    assert_eq!(sids(&s, i), vec![4]);
    i.icmp = Some((0, 0));
    assert_eq!(sids(&s, i), vec![] as Vec<u32>);
    let mut w = tcp("10.0.0.2", 1, "10.0.0.3", 2, ACK, b"");
    w.tcp = Some(TcpFields {
        flags: ACK,
        seq: 1000,
        ack: 0,
        window: 512,
    });
    assert_eq!(sids(&s, w), vec![5]);
    let mut g = udp("10.0.0.2", 0, "224.0.0.1", 0, b"");
    g.proto = 2;
    assert_eq!(sids(&s, g), vec![6]);
}

#[test]
fn contents_are_prefiltered_and_verified() {
    let s = set(
        "alert tcp any any -> any any (msg:\"user root\"; content:\"USER \"; depth:5; content:\"root\"; nocase; within:10; sid:10;)\n\
         alert udp any any -> any any (msg:\"magic\"; content:\"|DE AD BE EF|\"; offset:2; sid:11;)\n\
         alert tcp any any -> any 80 (msg:\"no host\"; content:\"GET \"; depth:4; content:!\"Host|3a|\"; nocase; sid:12;)\n",
    );
    let (c, sv) = ("1.1.1.1", "2.2.2.2");
    let cases: [(PacketView<'_>, &[u32], &str); 8] = [
        (tcp(c, 1, sv, 21, ACK, b"USER ROOT\r\n"), &[10], "nocase"),
        (
            tcp(c, 1, sv, 21, ACK, b"USER administrator root\r\n"),
            &[],
            "second content past within",
        ),
        (
            tcp(c, 1, sv, 21, ACK, b"xUSER root"),
            &[],
            "first content past depth",
        ),
        (
            udp(c, 1, sv, 9, b"\x00\x00\xde\xad\xbe\xef"),
            &[11],
            "hex content at offset",
        ),
        (
            udp(c, 1, sv, 9, b"\xde\xad\xbe\xef"),
            &[],
            "hex content before offset",
        ),
        (
            tcp(c, 1, sv, 21, ACK, b"\x00\x00\xde\xad\xbe\xef"),
            &[],
            "udp rule",
        ),
        (
            tcp(c, 1, sv, 80, ACK, b"GET / HTTP/1.0\r\n\r\n"),
            &[12],
            "negated content absent",
        ),
        (
            tcp(c, 1, sv, 80, ACK, b"GET / HTTP/1.1\r\nhost: a\r\n"),
            &[],
            "negated content present",
        ),
    ];
    for (p, want, why) in cases {
        assert_eq!(sids(&s, p), want, "{why}");
    }
}

#[test]
fn bidirectional_rules_match_either_way_once() {
    let s = set(
        "alert tcp 192.0.2.1 any <> 10.0.0.0/8 23 (msg:\"telnet\"; sid:20;)\n\
                 alert tcp any any <> any any (msg:\"all\"; sid:21;)\n",
    );
    assert_eq!(
        sids(&s, tcp("192.0.2.1", 4000, "10.1.1.1", 23, SYN, b"")),
        vec![20, 21]
    );
    assert_eq!(
        sids(&s, tcp("10.1.1.1", 23, "192.0.2.1", 4000, SYN | ACK, b"")),
        vec![20, 21]
    );
    assert_eq!(
        sids(&s, tcp("10.1.1.1", 4000, "192.0.2.1", 23, SYN, b"")),
        vec![21]
    );
}

#[test]
fn thresholds_fire_the_documented_number_of_times() {
    let s = set(
        "alert tcp any any -> any 22 (msg:\"limit\"; flags:S; threshold: type limit, track by_src, count 2, seconds 60; sid:30;)\n\
         alert tcp any any -> any 23 (msg:\"threshold\"; flags:S; threshold: type threshold, track by_dst, count 4, seconds 60; sid:31;)\n\
         alert tcp any any -> any 25 (msg:\"both\"; flags:S; threshold: type both, track by_rule, count 3, seconds 60; sid:32;)\n\
         alert tcp any any -> any 26 (msg:\"df\"; flags:S; detection_filter: track by_src, count 7, seconds 60; sid:33;)\n",
    );
    // Ten SYNs one second apart from one source to each port.
    for (port, want) in [(22, 2), (23, 2), (25, 1), (26, 3)] {
        let pkts: Vec<PacketView<'_>> = (0..10)
            .map(|_| tcp("192.0.2.9", 4000, "10.0.0.1", port, SYN, b""))
            .collect();
        let n: usize = run(&s, &pkts).iter().map(Vec::len).sum();
        assert_eq!(n, want, "port {port}");
    }
}

#[test]
fn flowbits_chain_rules_on_a_flow() {
    let s = set(
        "alert tcp any any -> any any (msg:\"login\"; content:\"LOGIN\"; flowbits:set,logged_in; flowbits:noalert; sid:40;)\n\
         alert tcp any any -> any any (msg:\"cmd after login\"; content:\"CMD\"; flowbits:isset,logged_in; sid:41;)\n\
         alert tcp any any -> any any (msg:\"cmd without login\"; content:\"CMD\"; flowbits:isnotset,logged_in; sid:42;)\n\
         alert tcp any any -> any any (msg:\"logout\"; content:\"BYE\"; flowbits:unset,logged_in; flowbits:noalert; sid:43;)\n",
    );
    let p = |b: &'static [u8]| tcp("1.1.1.1", 1, "2.2.2.2", 3, ACK, b);
    assert_eq!(
        run(
            &s,
            &[
                p(b"CMD"),
                p(b"LOGIN"),
                p(b"CMD"),
                p(b"BYE"),
                p(b"CMD"),
                p(b"LOGIN CMD")
            ]
        ),
        vec![vec![42], vec![], vec![41], vec![], vec![42], vec![41]],
        "the setter runs before the test on the same packet"
    );
    // Without a flow nothing is set or seen.
    let mut out = Vec::new();
    s.match_packet(&p(b"LOGIN CMD"), None, Timestamp(0), &mut out);
    assert_eq!(
        out.iter()
            .map(|x| x.rule.as_ref().unwrap().sid)
            .collect::<Vec<_>>(),
        vec![42]
    );
}

#[test]
fn pass_rules_silence_the_packet() {
    let s = set("alert tcp any any -> any 80 (msg:\"web\"; sid:50;)\n\
                 pass tcp 10.0.0.5 any -> any 80 (msg:\"scanner we run\"; sid:51;)\n\
                 drop tcp any any -> any 80 (msg:\"drop alerts\"; sid:52;)\n");
    assert_eq!(
        sids(&s, tcp("10.0.0.6", 1, "1.1.1.1", 80, SYN, b"")),
        vec![50, 52]
    );
    assert_eq!(
        sids(&s, tcp("10.0.0.5", 1, "1.1.1.1", 80, SYN, b"")),
        vec![] as Vec<u32>
    );
    assert_eq!(s.counters.passed.load(Ordering::Relaxed), 1);
}

#[test]
fn ip_only_rules_use_the_prefix_tables() {
    let s = set(
        "alert ip [192.0.2.0/24,198.51.100.7,2001:db8::/32] any -> $HOME_NET any (msg:\"listed in\"; threshold: type limit, track by_src, count 1, seconds 3600; flowbits:set,ET.Evil; sid:60;)\n\
         alert tcp $HOME_NET any -> [203.0.113.9] any (msg:\"listed out\"; sid:61;)\n",
    );
    assert_eq!(s.report().ip_only, 2);
    assert_eq!(
        sids(&s, tcp("192.0.2.77", 1, "10.0.0.1", 80, SYN, b"")),
        vec![60]
    );
    assert_eq!(
        sids(&s, tcp("2001:db8::5", 1, "2001:db9::1", 80, SYN, b"")),
        vec![] as Vec<u32>,
        "not to home"
    );
    assert_eq!(
        sids(&s, tcp("198.51.100.8", 1, "10.0.0.1", 80, SYN, b"")),
        vec![] as Vec<u32>
    );
    assert_eq!(
        sids(&s, tcp("10.0.0.1", 1, "203.0.113.9", 80, SYN, b"")),
        vec![61]
    );
    let mut u = udp("10.0.0.1", 1, "203.0.113.9", 80, b"");
    assert_eq!(sids(&s, u), vec![] as Vec<u32>, "tcp only");
    // Evaluated on the first packet of each direction only.
    u = tcp("10.0.0.1", 1, "203.0.113.9", 80, ACK, b"");
    u.flow = flow(true, true, false);
    assert_eq!(sids(&s, u), vec![] as Vec<u32>);
    // The flowbit was set on the flow.
    let mut bits = FlowBits::default();
    let mut out = Vec::new();
    s.match_packet(
        &tcp("192.0.2.1", 1, "10.0.0.1", 80, SYN, b""),
        Some(&mut bits),
        Timestamp(0),
        &mut out,
    );
    assert_eq!(bits.len(), 1);
}

#[test]
fn one_packet_raises_at_most_the_alert_limit() {
    let rules: String = (1..=20)
        .map(|i| format!("alert tcp any any -> any any (msg:\"r{i}\"; sid:{i};)\n"))
        .collect();
    let s = set(&rules);
    assert_eq!(
        sids(&s, tcp("1.1.1.1", 1, "2.2.2.2", 3, SYN, b"")).len(),
        MAX_ALERTS_PER_PACKET
    );
    assert_eq!(s.counters.alert_overflow.load(Ordering::Relaxed), 5);
}

#[test]
fn rule_alerts_in_eve() {
    let s = set(
        "alert tcp any any -> any 22 (msg:\"ssh \\\"x\\\"\"; target:dest_ip; classtype:attempted-admin; reference:url,example.com/a; metadata:created_at 2024_01_01, tag SSH, tag Brute; rev:3; sid:70;)\n\
         alert tcp any any -> any 23 (msg:\"p\"; classtype:attempted-admin; priority:3; gid:7; sid:71;)\n",
    );
    let mut out = Vec::new();
    s.match_packet(
        &tcp("1.1.1.1", 1000, "10.0.0.1", 22, SYN, b""),
        None,
        Timestamp(0),
        &mut out,
    );
    s.match_packet(
        &tcp("1.1.1.1", 1000, "10.0.0.1", 23, SYN, b""),
        None,
        Timestamp(0),
        &mut out,
    );
    let e = out[0].to_eve();
    assert_eq!(e["signature_id"], 70);
    assert_eq!(e["rev"], 3);
    assert_eq!(e["signature"], "ssh \"x\"");
    assert_eq!(e["category"], "Attempted Administrator Privilege Gain");
    assert_eq!(e["severity"], 1);
    assert_eq!(e["metadata"]["tag"], serde_json::json!(["SSH", "Brute"]));
    assert_eq!(
        e["metadata"]["created_at"],
        serde_json::json!(["2024_01_01"])
    );
    assert_eq!(e["references"], serde_json::json!(["url,example.com/a"]));
    assert_eq!(e["target"]["ip"], "10.0.0.1");
    assert_eq!(e["target"]["port"], 22);
    assert_eq!(e["source"]["ip"], "1.1.1.1");
    assert!(e["metadata"].get("detector").is_none());
    let e = out[1].to_eve();
    assert_eq!(
        (e["gid"].as_u64(), e["severity"].as_u64()),
        (Some(7), Some(3))
    );
    assert!(e.get("source").is_none() && e.get("target").is_none());
    assert_eq!(out[0].name(), "signature");
}

#[test]
fn detector_rules_re_prioritise_and_suppression_applies_to_detectors() {
    let s = set_with(
        "alert ip any any -> any any (msg:\"SCAN seen\"; detector:port_scan; classtype:attempted-recon; priority:1; sid:9100003; rev:2;)\n\
         alert tcp any any -> any any (msg:\"role\"; detector:reversed_role; classtype:bad-unknown; sid:9100001;)\n\
         pass ip any any -> any any (msg:\"smtp off\"; detector:outbound_smtp; sid:9100008;)\n",
        Some("suppress gen_id 1, sig_id 9100001, track by_src, ip 10.0.0.5\n"),
    );
    assert_eq!(s.report().detector_rules, 3);
    assert_eq!(s.detector_rule("port_scan").unwrap().msg, "SCAN seen");
    assert!(s.detector_rule("syn_flood").is_none());
    let ep = |ip: &str| Endpoint::host(a(ip));
    let mut alerts = vec![
        Alert::new(Kind::PortScan, 3, ep("1.1.1.1"), ep("10.0.0.1")),
        Alert::new(Kind::ReversedRole, 2, ep("10.0.0.5"), ep("1.1.1.1")),
        Alert::new(Kind::ReversedRole, 2, ep("10.0.0.6"), ep("1.1.1.1")),
        Alert::new(Kind::OutboundSmtp, 2, ep("10.0.0.6"), ep("1.1.1.1")),
        Alert::new(Kind::SynFlood, 1, ep("1.1.1.1"), ep("10.0.0.1")),
    ];
    s.finish(&mut alerts, None, Timestamp(0));
    let got: Vec<(u64, u64, String)> = alerts
        .iter()
        .map(|x| {
            let e = x.to_eve();
            (
                e["signature_id"].as_u64().unwrap(),
                e["severity"].as_u64().unwrap(),
                e["signature"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (9_100_003, 1, "SCAN seen".to_string()),
            (9_100_001, 2, "role".to_string()),
            (9_100_005, 1, Kind::SynFlood.signature().to_string()),
        ]
    );
    assert_eq!(alerts[0].to_eve()["rev"], 2);
    assert_eq!(alerts[0].to_eve()["metadata"]["detector"][0], "port_scan");
}

#[test]
fn rejected_rules_are_located_and_counted_by_reason() {
    let text = "# header\n\
        alert tcp any any -> any any (msg:\"ok\"; sid:1;)\n\
        alert http any any -> any any (msg:\"app\"; sid:2;)\n\
        alert tcp any any -> any any (msg:\"uri\"; http.uri; content:\"/x\"; sid:3;)\n\
        alert tcp any any -> any any (msg:\"pcre\"; pcre:\"/x/\"; sid:4;)\n\
        alert tcp any any -> any any (msg:\"dup\"; sid:1;)\n\
        alert tcp $NOPE any -> any any (msg:\"var\"; sid:5;)\n\
        alert tcp any any -> any any (msg:\"class\"; classtype:no-such-class; sid:6;)\n\
        alert tcp any any -> any any (msg:\"no sid\";)\n\
        alert tcp any any -> any any (msg:\"bad det\"; detector:nope; sid:7;)\n\
        alert tcp any any -> any any (msg:\"ok2\"; \\\n   sid:8;)\n";
    let s = set_with(text, None);
    let r = s.report();
    assert_eq!((r.loaded, r.rejected(), r.rules()), (2, 8, 10));
    let lines: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        lines,
        vec![
            "t.rules:3:7: protocol: protocol `http` is not supported: application-layer protocols are not parsed (ip, tcp, udp, icmp, icmpv6, sctp only)",
            "t.rules:4:42: http.uri: keyword `http.uri` is not supported: application-layer buffers are not inspected (packet payload only)",
            "t.rules:5:43: pcre: keyword is not supported",
            "t.rules:6:42: sid: gid 1 sid 1 is already used at t.rules:2",
            "t.rules:7:11: source: unknown variable `$NOPE`",
            "t.rules:8:44: classtype: unknown classtype `no-such-class` (not in the classification file)",
            "t.rules:9:1: sid: the rule has no sid",
            "t.rules:10:46: detector: `nope` is not a detector (reversed_role, unexpected_inbound, port_scan, port_sweep, syn_flood, brute_force, egress_violation, outbound_smtp, open_proxy, reputation, callback, protocol_scan)",
        ]
    );
    let reasons = r.by_reason();
    assert!(
        reasons.contains(&("unsupported protocol `http`".to_string(), 1)),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("unsupported keyword `pcre`".to_string(), 1)),
        "{reasons:?}"
    );
    assert!(!r.all_loaded());
}

/// Rule sets that each fill one of the matcher's candidate lists: ports
/// of either side, any port with an option, fast patterns with and
/// without ports, addresses only, and a protocol without ports.
const CANDIDATE_SETS: &[&str] = &[
    "alert tcp any any -> any [22,3306] (flags:S; sid:1;)\nalert udp any any -> any 161 (sid:2;)",
    "alert tcp any 53 -> any any (sid:3;)\nalert udp any [67,68] -> any any (sid:4;)",
    "alert udp any any -> any any (dsize:>100; sid:5;)",
    "alert tcp any any -> any 80 (content:\"GET \"; sid:6;)\nalert tcp any any -> any 8080 (content:\"ab\"; sid:7;)",
    "alert udp any any -> any any (content:\"evil\"; sid:8;)",
    "alert ip 192.0.2.0/24 any -> any any (sid:9;)",
    "alert icmp any any -> any any (itype:8; sid:10;)",
];

/// A packet for the candidate property: protocol, ports, payload,
/// addresses and flow facts drawn from the values the sets above name.
fn candidate_packet(
    proto: u8,
    ports: (u16, u16),
    payload: &[u8],
    src_doc: bool,
    to_server: bool,
    first: bool,
) -> PacketView<'_> {
    let src = if src_doc { "192.0.2.7" } else { "10.1.2.3" };
    let mut p = tcp(src, ports.0, "10.0.0.9", ports.1, SYN, payload);
    p.proto = proto;
    if proto != PROTO_TCP {
        p.tcp = None;
    }
    if proto == PROTO_ICMP {
        (p.sport, p.dport) = (0, 0);
        p.icmp = Some((8, 0));
    }
    p.flow = flow(to_server, false, first);
    p
}

#[test]
fn may_match_is_false_only_where_there_is_no_candidate() {
    let s = set(CANDIDATE_SETS[0]);
    let first = true;
    let listed = candidate_packet(PROTO_TCP, (40000, 3306), b"", false, true, first);
    let other = candidate_packet(PROTO_TCP, (40000, 3307), b"hello", false, true, first);
    assert!(s.matcher.may_match(PROTO_TCP, 40000, 3306, b"", first));
    assert!(!s.matcher.may_match(PROTO_TCP, 40000, 3307, b"hello", first));
    assert!(
        !s.matcher.may_match(PROTO_TCP, 3306, 40000, b"", first),
        "a destination port list is not a source port's"
    );
    let mut alerts = Vec::new();
    s.match_packet(&listed, None, Timestamp(0), &mut alerts);
    assert_eq!(alerts.len(), 1);
    alerts.clear();
    s.match_packet(&other, None, Timestamp(0), &mut alerts);
    assert!(alerts.is_empty());
}

/// A candidate packet's parameters: protocol, ports (often ones the rule
/// sets name, the 1023/1024 edge of an open range among them), payload
/// (often one holding a pattern), whether the source is in
/// 192.0.2.0/24, direction and whether it is the first that way.
type PacketParams = (u8, u16, u16, Vec<u8>, bool, bool, bool);

fn packet_params() -> impl proptest::strategy::Strategy<Value = PacketParams> {
    use proptest::prelude::any;
    use proptest::sample::select;
    let port = |named: Vec<u16>| proptest::prop_oneof![select(named), any::<u16>()];
    (
        select(vec![PROTO_TCP, PROTO_UDP, PROTO_ICMP, 47u8]),
        port(vec![22, 53, 67, 80, 161, 1024, 3306, 8080]),
        port(vec![22, 53, 68, 80, 161, 1023, 3306, 8080]),
        proptest::prop_oneof![
            3 => select(vec![b"".to_vec(), b"GET /".to_vec(), b"xxEVILxx".to_vec(), b"ab".to_vec()]),
            1 => proptest::collection::vec(any::<u8>(), 0..200),
        ],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
}

/// Fails when the port check turns away the packet `params` describe
/// although `s` has a candidate rule for it.
fn check_port_check(
    s: &RuleSet,
    params: &PacketParams,
    what: &str,
) -> Result<(), proptest::test_runner::TestCaseError> {
    let (proto, sport, dport, payload, src_doc, to_server, first) = params;
    let p = candidate_packet(
        *proto,
        (*sport, *dport),
        payload,
        *src_doc,
        *to_server,
        *first,
    );
    let mut scratch = matcher::Scratch::default();
    s.matcher.candidates(&p, *first, &mut scratch);
    proptest::prop_assert!(
        scratch.cands.is_empty()
            || s.matcher
                .may_match(p.proto, p.sport, p.dport, p.payload, *first),
        "{} skips {:?} with candidates {:?}",
        what,
        p,
        scratch.cands
    );
    Ok(())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
    /// The check that lets most packets skip the rules never skips one
    /// that has a candidate rule.
    #[test]
    fn may_match_never_skips_a_candidate(
        which in 0..CANDIDATE_SETS.len(),
        params in packet_params(),
    ) {
        check_port_check(&set(CANDIDATE_SETS[which]), &params, CANDIDATE_SETS[which])?;
    }
}

/// One rule from the choices given: protocol, source, source port,
/// direction, destination, destination port and options, as indexes.
fn generated_rule(sid: usize, parts: [usize; 7]) -> String {
    const PROTOS: &[&str] = &["tcp", "udp", "icmp", "ip"];
    const ADDRS: &[&str] = &["any", "$HOME_NET", "192.0.2.0/24", "!10.0.0.0/8"];
    const PORTS: &[&str] = &["any", "53", "[67,68]", "1024:", "!80", "[22,3306,8080]"];
    const DIRS: &[&str] = &["->", "<>"];
    const OPTIONS: &[&str] = &[
        "",
        "flags:S;",
        "content:\"evil\";",
        "content:\"GET \"; flow:to_server;",
        "content:\"ab\";",
        "dsize:>100;",
        "itype:8;",
    ];
    let pick = |list: &[&'static str], i: usize| list[i % list.len()];
    format!(
        "alert {} {} {} {} {} {} ({} sid:{};)",
        pick(PROTOS, parts[0]),
        pick(ADDRS, parts[1]),
        pick(PORTS, parts[2]),
        pick(DIRS, parts[3]),
        pick(ADDRS, parts[4]),
        pick(PORTS, parts[5]),
        pick(OPTIONS, parts[6]),
        sid + 1,
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
    /// The same over rule sets of one to four rules put together from
    /// protocols, address and port sets (negated, ranges, lists), both
    /// directions and options.
    #[test]
    fn may_match_never_skips_a_candidate_of_generated_rules(
        rules in proptest::collection::vec(proptest::prelude::any::<[usize; 7]>(), 1..5),
        params in packet_params(),
    ) {
        let text: Vec<String> = rules.iter().enumerate().map(|(i, r)| generated_rule(i, *r)).collect();
        let text = text.join("\n");
        check_port_check(&set_with(&text, None), &params, &text)?;
    }
}

proptest::proptest! {
    /// Whole rule files of arbitrary text load without panicking, and every
    /// rule is either loaded or has an error.
    #[test]
    fn no_file_panics_the_loader(s in "(\\PC{0,80}\n){0,8}") {
        let set = set_with(&s, Some(&s));
        let r = set.report();
        proptest::prop_assert_eq!(r.loaded + r.detector_rules + r.rejected(), r.rules());
    }
}
