#!/usr/bin/env bash
# Build the backflow holdout captures: a second labelled set, independent of
# pcaps/lab (other addresses, another home/role layout, other tools' options
# and timings), which the detectors were checked against but not tuned on.
#
#   sudo bash scripts/captures/generate-holdout.sh [OUTDIR]   (default OUTDIR: pcaps/holdout)
#
# Two network namespaces joined by one veth pair stand in for the home
# network and the internet (names distinct from generate.sh's, so both can
# run on one machine):
#
#   bfho-in  (ho-in)  : home: 172.16.5.0/24 servers, 192.168.77.0/24 mail+db,
#                       10.77.8.0/24 workstations, 10.77.9.1-30 sweep targets,
#                       172.16.9.9 (a host the policy does not list),
#                       fd00:5::/64, fd00:77::/64
#   bfho-out (ho-out) : "internet": 192.0.2.0/24 clients and attackers,
#                       198.51.100.140-191 servers, 2001:db8:a::/64, 2001:db8:b::/64;
#                       203.0.113.0/24 is only ever a spoofed source
#
# Only on-link routes for the other side's ranges exist (no default route),
# so nothing can leave the two namespaces. Every tool runs inside them under
# `timeout 60` with bounded counts; the captures are tcpdump on ho-in.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${1:-$REPO/pcaps/holdout}

ME=generate-holdout.sh
NS_IN=bfho-in
NS_OUT=bfho-out
IF_IN=ho-in
IF_OUT=ho-out
T=60                       # timeout (s) around every tool
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3 || true)

# shellcheck source=lib.sh
source "$HERE/lib.sh"
lab_require_root "${1:-}"

declare -A PKG=([ip]=iproute2 [ss]=iproute2 [timeout]=coreutils [tcpdump]=tcpdump
    [nmap]=nmap [hping3]=hping3 [masscan]=masscan [traceroute]=traceroute [nft]=nftables
    [socat]=socat [ncat]=ncat [tshark]=tshark [capinfos]=wireshark-common
    [sshd]=openssh-server [ssh]=openssh-client [ssh-keygen]=openssh-client
    [sshpass]=sshpass [curl]=curl [swaks]=swaks [openssl]=openssl [dig]=dnsutils
    [ping]=iputils-ping [python3]=python3 [python3-pyftpdlib]=python3-pyftpdlib)
lab_check_tools PKG
lab_init bfho
lab_take_namespaces

# ---------------------------------------------------------------- topology
say "setting up namespaces in $WORK"
WEB=172.16.5.10 PROXY=172.16.5.11 FTP=172.16.5.21 API=172.16.5.40 DNS=172.16.5.53
MAIL=192.168.77.25 DB=192.168.77.30
WS1=10.77.8.15 WS2=10.77.8.16 WS3=10.77.8.17 OPS=10.77.8.50 WIN=10.77.8.60
LONE=172.16.9.9
WEB6=fd00:5::10 API6=fd00:5::40 WS6=fd00:77::15
IN4=($WEB $PROXY $FTP $API $DNS $MAIL $DB $WS1 $WS2 $WS3 $OPS $WIN $LONE $(seq -f '10.77.9.%g' 1 30))
IN6=($WEB6 $API6 $WS6)
OUT4=($(seq -f '192.0.2.%g' 10 20) 192.0.2.30 192.0.2.40 $(seq -f '192.0.2.%g' 45 48) 192.0.2.51 192.0.2.52
      192.0.2.60 192.0.2.61 192.0.2.62 192.0.2.63 192.0.2.70 192.0.2.90 192.0.2.91 $(seq -f '192.0.2.%g' 95 99)
      $(seq -f '198.51.100.%g' 140 191))
ATK6=2001:db8:a::66 CLI6=2001:db8:a::67 SRV6=2001:db8:b::20
OUT6=($ATK6 $CLI6 $SRV6)

lab_veth_pair
lab_addrs $NS_IN $IF_IN "${IN4[@]}" "${IN6[@]}"
lab_addrs $NS_OUT $IF_OUT "${OUT4[@]}" "${OUT6[@]}"
lab_links_up
for r in 192.0.2.0/24 198.51.100.0/24 203.0.113.0/24 2001:db8::/32; do rc ip -n $NS_IN route add $r dev $IF_IN; done
for r in 172.16.5.0/24 172.16.9.0/24 192.168.77.0/24 10.77.8.0/24 10.77.9.0/24 fd00:5::/64 fd00:77::/64; do
    rc ip -n $NS_OUT route add $r dev $IF_OUT
done
OUT_MAC=$(ip -n $NS_OUT -br link show $IF_OUT | awk '{print $3}')
IN_MAC=$(ip -n $NS_IN -br link show $IF_IN | awk '{print $3}')

lab_keys
SSH_OPTS=(-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
          -o ConnectTimeout=5 -o LogLevel=ERROR)
NMAP=(nmap -n -Pn --max-retries 1 --reason)
HTTPD=("$PY" "$HERE/httpd.py")
UDPSVC=("$PY" "$HERE/udp_service.py")
FTPD=("$PY" -m pyftpdlib)
mkdir -p "$WORK/ftp"
for i in 1 2 3 4 5; do head -c $((2000 * i)) /dev/urandom | base64 >"$WORK/ftp/report$i.txt"; done
sleep 2   # let IPv6 link-local/MLD chatter of link-up pass before the first capture
CUR=setup

# Listeners used by several scenarios.
b6() { [[ $1 == *:* ]] && printf '[%s]' "$1" || printf '%s' "$1"; }
ssh_banner() { svc "$1" socat TCP4-LISTEN:"$3",bind="$2",reuseaddr,fork SYSTEM:'echo SSH-2.0-OpenSSH_9.2p1'; wait_listen "$1" tcp "$(b6 "$2")" "$3"; }
http_on() { svc "$1" "${HTTPD[@]}" --bind "$2" --port "$3" --label "${4:-ho}"; wait_listen "$1" tcp "$(b6 "$2")" "$3"; }
https_on() { svc "$1" "${HTTPD[@]}" --bind "$2" --port "$3" --tls "$WORK/tls.crt" "$WORK/tls.key" --label "${4:-ho}"; wait_listen "$1" tcp "$(b6 "$2")" "$3"; }

# ================================================================ 1. scans, other options and timings
scenario scan-t3-top100 \
    "Inbound nmap -sS -T3 --top-ports 100 from 192.0.2.10 against workstation $WS1 (open: tcp/22 banner, tcp/80 httpd)."
ssh_banner $NS_IN $WS1 22; http_on $NS_IN $WS1 80
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -T3 -sS --top-ports 100 -e $IF_OUT -S 192.0.2.10 $WS1
cap_stop
gt port_scan 192.0.2.10 $WS1 "technique=syn; direction=inbound; -T3 --top-ports 100; open 22,80"

scenario scan-t2-slow \
    "Inbound nmap -sS -T2 (polite: one probe every 0.4 s) of ports 20-45 from 192.0.2.11 against api server $API (open: none in range)."
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -T2 -sS -p 20-45 -e $IF_OUT -S 192.0.2.11 $API
cap_stop
gt port_scan 192.0.2.11 $API "technique=syn; direction=inbound; -T2, 26 ports in ~11 s (~2.4 probes/s)"

scenario scan-t5-fast \
    "Inbound nmap -sS -T5 -F (fast: 100 ports, insane timing) from 192.0.2.12 against db server $DB (open: tcp/3306 banner)."
svc $NS_IN socat TCP4-LISTEN:3306,bind=$DB,reuseaddr,fork SYSTEM:'sleep 0.2'; wait_listen $NS_IN tcp $DB 3306
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -T5 -sS -F -e $IF_OUT -S 192.0.2.12 $DB
cap_stop
gt port_scan 192.0.2.12 $DB "technique=syn; direction=inbound; -T5 -F (100 ports); open 3306 (published)"

scenario scan-delay \
    "Inbound nmap -sS --scan-delay 700ms -p 100-130 from 192.0.2.13 against web server $WEB: 31 ports, one probe every 0.7 s (~22 s)."
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -T3 -sS --scan-delay 700ms -p 100-130 -e $IF_OUT -S 192.0.2.13 $WEB
cap_stop
gt port_scan 192.0.2.13 $WEB "technique=syn; direction=inbound; --scan-delay 700ms, 31 ports over ~22 s"

scenario scan-connect-range \
    "Inbound nmap -sT (connect) -T4 -p 8000-8300 from 192.0.2.14 against workstation $WS2 (open: tcp/8080 httpd)."
http_on $NS_IN $WS2 8080
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -T4 -sT -p 8000-8300 -e $IF_OUT -S 192.0.2.14 $WS2
cap_stop
gt port_scan 192.0.2.14 $WS2 "technique=connect; direction=inbound; ports 8000-8300 (301); open 8080 (full handshake to an unpublished port: an unexpected_inbound finding beside it is acceptable)"

for st in sA sM sW; do
    case $st in sA) name=ack; src=192.0.2.15; ports=(-p 1-300) ;; sM) name=maimon; src=192.0.2.16; ports=(-p 1-300) ;;
                sW) name=window; src=192.0.2.17; ports=(--top-ports 200) ;; esac
    scenario scan-$name \
        "Inbound nmap -$st ($name) ${ports[*]} from $src against dns server $DNS (tcp/53 listening): every probe is a bare ACK or FIN/ACK segment with no connection behind it, answered by RST."
    svc $NS_IN socat TCP4-LISTEN:53,bind=$DNS,reuseaddr,fork SYSTEM:'sleep 0.2'; wait_listen $NS_IN tcp $DNS 53
    cap_start
    nsx_any $NS_OUT "${NMAP[@]}" -T4 -$st "${ports[@]}" -e $IF_OUT -S $src $DNS
    cap_stop
    tech=$name; [[ $name == window ]] && tech=ack
    gt port_scan $src $DNS "technique=$tech; direction=inbound; nmap -$st ${ports[*]}; every probe answered by RST"
done

scenario scan-udp-few \
    "Inbound nmap -sU on 12 chosen ports (53,67,69,111,123,137,138,161,162,500,514,520) from 192.0.2.18 against dns server $DNS (udp/53 answers, the rest ICMP port unreachable)."
svc $NS_IN "${UDPSVC[@]}" serve dns --bind $DNS; wait_listen $NS_IN udp $DNS 53
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -T4 -sU -p 53,67,69,111,123,137,138,161,162,500,514,520 -e $IF_OUT -S 192.0.2.18 $DNS
cap_stop
gt port_scan 192.0.2.18 $DNS "technique=udp; direction=inbound; 12 udp ports, 11 refused by ICMP port unreachable, 53 answered"

scenario scan-version \
    "Inbound nmap -sS -sV -p 1-120 from 192.0.2.19 against ftp host $FTP (open: 21 pyftpdlib, 22 OpenSSH banner, 80 httpd): a SYN scan, then version probes (full connections with payloads) to the open ports."
svc $NS_IN "${FTPD[@]}" -i $FTP -p 21 -d "$WORK/ftp"; wait_listen $NS_IN tcp $FTP 21
ssh_banner $NS_IN $FTP 22; http_on $NS_IN $FTP 80
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -T4 -sS -sV --version-light -p 1-120 -e $IF_OUT -S 192.0.2.19 $FTP
cap_stop
gt port_scan 192.0.2.19 $FTP "technique=syn (+ -sV version probes to 21,22,80); direction=inbound; 120 ports"

scenario scan-decoy \
    "Inbound nmap -sS -p 1-200 from 192.0.2.20 hidden among decoys (-D 192.0.2.51,192.0.2.52,ME) against workstation $WS3; every probe is sent from all three addresses."
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -T4 -sS -p 1-200 -D 192.0.2.51,192.0.2.52,ME -e $IF_OUT -S 192.0.2.20 $WS3
cap_stop
gt port_scan 192.0.2.20 $WS3 "technique=syn; direction=inbound; real scanner among decoys, 200 ports"
gt port_scan 192.0.2.51 $WS3 "secondary: decoy copy of the same scan (nmap -D)"
gt port_scan 192.0.2.52 $WS3 "secondary: decoy copy of the same scan (nmap -D)"

scenario scan-ordered \
    "Inbound nmap -sS -r (ports in order, not randomised) --top-ports 300 --max-rate 400 from 192.0.2.10 against web server $WEB (open: 80, 443)."
http_on $NS_IN $WEB 80; https_on $NS_IN $WEB 443
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -T4 -sS -r --top-ports 300 --max-rate 400 -e $IF_OUT -S 192.0.2.10 $WEB
cap_stop
gt port_scan 192.0.2.10 $WEB "technique=syn; direction=inbound; ordered ports, --max-rate 400; open 80,443 (published)"

scenario scan-outbound-ops \
    "Outbound nmap -sS -T4 -p 1-400 from the ops host $OPS (egress unrestricted) against external 198.51.100.150 (open: 22, 80)."
ssh_banner $NS_OUT 198.51.100.150 22; http_on $NS_OUT 198.51.100.150 80
cap_start
nsx_any $NS_IN "${NMAP[@]}" -T4 -sS -p 1-400 -e $IF_IN -S $OPS 198.51.100.150
cap_stop
gt port_scan $OPS 198.51.100.150 "technique=syn; direction=outbound; 400 ports; open 22,80"

scenario scan-outbound-connect \
    "Outbound nmap -sT -F (connect scan, 100 ports) from workstation $WS2 against external 198.51.100.151 (open: 22, 80)."
ssh_banner $NS_OUT 198.51.100.151 22; http_on $NS_OUT 198.51.100.151 80
cap_start
nsx_any $NS_IN "${NMAP[@]}" -T4 -sT -F -e $IF_IN -S $WS2 198.51.100.151
cap_stop
gt port_scan $WS2 198.51.100.151 "technique=connect; direction=outbound; 100 ports; open 22,80"
gt egress_violation $WS2 198.51.100.151:22 "secondary: the connect scan completed a handshake with ssh, outside the workstation's egress"

scenario scan-ipv6-connect \
    "IPv6 inbound nmap -6 -sT -T4 -p 1-150 from $ATK6 against workstation $WS6 (open: tcp/22 banner)."
svc $NS_IN socat TCP6-LISTEN:22,bind=[$WS6],reuseaddr,fork SYSTEM:'echo SSH-2.0-OpenSSH_9.2p1'; wait_listen $NS_IN tcp "[$WS6]" 22
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -6 -T4 -sT -p 1-150 -e $IF_OUT -S $ATK6 $WS6
cap_stop
gt port_scan $ATK6 $WS6 "technique=connect; direction=inbound; ipv6; 150 ports; open 22"

scenario scan-masscan \
    "Inbound masscan -p1-600 --rate 3000 from 192.0.2.30 against api server $API (open: tcp/8443 not in range; masscan's own TCP stack on ho-out, confined to bfho-out by the namespace)."
cap_start
nsx_any $NS_OUT masscan -p1-600 $API --rate 3000 --wait 1 --adapter $IF_OUT --adapter-ip 192.0.2.30 --router-mac $IN_MAC
cap_stop
gt port_scan 192.0.2.30 $API "technique=syn; direction=inbound; masscan 600 ports at 3000 pkt/s, fixed source port"

# ================================================================ 2. sweeps
scenario sweep-tcp22-t3 \
    "Inbound nmap -sS -T3 -p 22 sweep of 10.77.9.0/27 from 192.0.2.61 (22 open on 10.77.9.4 and 10.77.9.19)."
ssh_banner $NS_IN 10.77.9.4 22; ssh_banner $NS_IN 10.77.9.19 22
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -T3 -sS -p 22 -e $IF_OUT -S 192.0.2.61 10.77.9.0/27
cap_stop
gt port_sweep 192.0.2.61 '*:22' "technique=syn; direction=inbound; /27 (30 live hosts); open on 2"

scenario sweep-few-ports \
    "Inbound nmap -sS -p 80,443,3389 sweep of 10.77.9.0/27 from 192.0.2.62 (all closed)."
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -T4 -sS -p 80,443,3389 -e $IF_OUT -S 192.0.2.62 10.77.9.0/27
cap_stop
for p in 80 443 3389; do gt port_sweep 192.0.2.62 "*:$p" "technique=syn; direction=inbound; /27, three ports, all refused"; done

scenario sweep-udp123 \
    "Inbound nmap -sU -p 123 sweep of 10.77.9.0/27 from 192.0.2.63 (all closed: ICMP port unreachable)."
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -T4 -sU -p 123 --host-timeout 20s -e $IF_OUT -S 192.0.2.63 10.77.9.0/27
cap_stop
gt port_sweep 192.0.2.63 '*:123' "technique=udp; direction=inbound; /27 NTP probes, all refused"

scenario sweep-ping \
    "Inbound nmap -sn --disable-arp-ping (a ping sweep that goes out as IP: ICMP echo, TCP SYN to 443, TCP ACK to 80, ICMP timestamp per host) of 10.77.9.0/27 from 192.0.2.60."
cap_start
nsx_any $NS_OUT nmap -n -sn --disable-arp-ping -e $IF_OUT -S 192.0.2.60 10.77.9.0/27
cap_stop
gt benign 192.0.2.60 '*' "ping sweep: nmap sends the TCP probes only to hosts whose ICMP echo reply was late, so almost all of it is ICMP echo answered by live hosts: not alerted (see the decisions above)"

scenario sweep-outbound-rdp \
    "Outbound nmap -sS -p 3389 sweep from workstation $WS3 across external 198.51.100.160/27 (3389 open on .170)."
svc $NS_OUT socat TCP4-LISTEN:3389,bind=198.51.100.170,reuseaddr,fork SYSTEM:'sleep 0.3'; wait_listen $NS_OUT tcp 198.51.100.170 3389
cap_start
nsx_any $NS_IN "${NMAP[@]}" -T4 -sS -p 3389 -e $IF_IN -S $WS3 198.51.100.160/27
cap_stop
gt port_sweep $WS3 '*:3389' "technique=syn; direction=outbound; 32 external hosts, open on 1"

scenario sweep-masscan \
    "Inbound masscan -p 3389 --rate 500 sweep of 10.77.9.0/27 from 192.0.2.30."
cap_start
nsx_any $NS_OUT masscan -p3389 10.77.9.0/27 --rate 500 --wait 1 --adapter $IF_OUT --adapter-ip 192.0.2.30 --router-mac $IN_MAC
cap_stop
gt port_sweep 192.0.2.30 '*:3389' "technique=syn; direction=inbound; masscan, 32 addresses, 30 live (RST)"

# ================================================================ 3. floods
# --rand-source picks any IPv4 source; an nft rule in bfho-out rewrites each
# flood packet's source to a random address of 203.0.113.0/24 (documentation
# range, assigned nowhere), and neighbour entries in bfho-in send the victim's
# replies to those addresses back onto the wire, where bfho-out drops them.
SPOOF=($(seq -f '203.0.113.%g' 1 254))
spoof_neigh "${SPOOF[@]}"
logcmd root "# for A in 203.0.113.1-254:" ip -n $NS_IN neigh replace '$A' lladdr "$OUT_MAC" dev $IF_IN nud permanent
spoof_rule() {        # spoof_rule "MATCH": rewrite the source of matching packets leaving bfho-out
    local map i
    map=$(for i in $(seq 0 253); do printf '%d : 203.0.113.%d, ' $i $((i + 1)); done)
    ip netns exec $NS_OUT nft -f - <<EOF
table ip bfho_spoof {
    chain post {
        type filter hook postrouting priority 0; policy accept;
        $1 ip saddr set numgen random mod 254 map { ${map%, } }
    }
}
EOF
    logcmd $NS_OUT "# nft: table ip bfho_spoof, postrouting: $1 ip saddr set numgen random mod 254 map { 0 : 203.0.113.1, ... 253 : 203.0.113.254 }"
}
spoof_clear() { ip netns exec $NS_OUT nft delete table ip bfho_spoof; logcmd $NS_OUT nft delete table ip bfho_spoof; }

scenario flood-syn443-randsrc \
    "Spoofed SYN flood: hping3 -S -p 443 --rand-source -i u200 -c 1500 to web server $WEB:443 (TLS listener), sources rewritten into 203.0.113.0/24 (~254 sources, ~6 SYNs each)."
https_on $NS_IN $WEB 443
spoof_rule "ip daddr $WEB tcp dport 443"
cap_start
nsx_any $NS_OUT hping3 -q -S -p 443 --rand-source -i u200 -c 1500 $WEB
cap_stop
spoof_clear
gt syn_flood '*' $WEB:443 "direction=inbound; 1500 SYNs in ~0.3-1 s from ~254 spoofed sources in 203.0.113.0/24"

scenario flood-syn22-single \
    "Single-source SYN flood: hping3 -S -p 22 -i u1000 -c 800 from 192.0.2.70 (a live host: its kernel answers the SYN-ACKs with RST) to ftp host $FTP:22 (sshd)."
svc $NS_IN /usr/sbin/sshd -D -e -f "$(sshd_conf $FTP)"; wait_listen $NS_IN tcp $FTP 22
cap_start
nsx_any $NS_OUT hping3 -q -S -p 22 -i u1000 -c 800 -a 192.0.2.70 $FTP
cap_stop
gt syn_flood 192.0.2.70 $FTP:22 "direction=inbound; 800 SYNs at ~1000/s from one live source"

scenario flood-syn80-slow \
    "Single spoofed-source SYN flood at a slower pace: hping3 -S -p 80 -i u2000 -c 700 from 203.0.113.77 (unassigned) to web server $WEB:80 (~500 SYN/s)."
http_on $NS_IN $WEB 80
cap_start
nsx_any $NS_OUT hping3 -q -S -p 80 -i u2000 -c 700 -a 203.0.113.77 $WEB
cap_stop
gt syn_flood 203.0.113.77 $WEB:80 "direction=inbound; 700 SYNs at ~500/s from one spoofed source"

scenario flood-udp53-randsrc \
    "UDP flood: hping3 --udp -p 53 --rand-source -i u300 -c 1200 to dns server $DNS:53 (sources rewritten into 203.0.113.0/24). No detector kind covers UDP floods (syn_flood is TCP): the line is benign in the sense that no alert may be raised; in particular the random sources must not look like scans or sweeps."
svc $NS_IN "${UDPSVC[@]}" serve dns --bind $DNS; wait_listen $NS_IN udp $DNS 53
spoof_rule "ip daddr $DNS udp dport 53"
cap_start
nsx_any $NS_OUT hping3 -q --udp -p 53 --rand-source -i u300 -c 1200 $DNS
cap_stop
spoof_clear
gt benign '*' $DNS:53 "udp flood, no detector kind for it: must raise no scan/sweep/other alert"

# ================================================================ 4. reversed roles
scenario reversed-db-3306 \
    "Database server $DB (publishes tcp/3306) opens a TCP connection FROM its service port: ncat -p 3306 -s $DB to external 198.51.100.140:4444 and sends a banner-like line."
mkexec c2_4444.sh 'sleep 0.3; printf "whoami\n"; sleep 1'
svc $NS_OUT socat -T 5 TCP4-LISTEN:4444,bind=198.51.100.140,reuseaddr EXEC:"$WORK/c2_4444.sh"; wait_listen $NS_OUT tcp 198.51.100.140 4444
cap_start
nsx_any $NS_IN sh -c "(printf 'mysql 8.0 ready\n'; sleep 2) | ncat -w 5 -p 3306 -s $DB 198.51.100.140 4444"
cap_stop
gt reversed_role $DB:3306 198.51.100.140:4444 "direction=outbound; db server initiates TCP from its published port 3306"
gt egress_violation $DB 198.51.100.140:4444 "secondary: same connection; db egress=[]"

scenario reversed-mail-25 \
    "Mail server $MAIL (publishes tcp/25) opens TCP FROM port 25 to external 198.51.100.141:8080 (socat bind=$MAIL:25) and sends an HTTP request."
http_on $NS_OUT 198.51.100.141 8080
cap_start
nsx $NS_IN sh -c "printf 'GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | socat -T 5 - TCP4:198.51.100.141:8080,bind=$MAIL:25,reuseaddr"
cap_stop
gt reversed_role $MAIL:25 198.51.100.141:8080 "direction=outbound; mail server initiates TCP from its service port 25"
gt egress_violation $MAIL 198.51.100.141:8080 "secondary: same connection; mail egress smtp,dns"

scenario reversed-dns-53tcp \
    "DNS server $DNS (publishes dns) opens TCP FROM port 53 to external 198.51.100.142:443 (ncat -p 53) after answering an inbound DNS-over-TCP query from 192.0.2.95."
svc $NS_IN "${UDPSVC[@]}" serve dns --tcp --bind $DNS; wait_listen $NS_IN tcp $DNS 53
https_on $NS_OUT 198.51.100.142 443
cap_start
nsx $NS_OUT "${UDPSVC[@]}" query dns --tcp --bind 192.0.2.95 --server $DNS www.example.org
sleep 0.5
kill -TERM "${BG_PIDS[0]}"; wait "${BG_PIDS[0]}" 2>/dev/null || true
printf '# (stop the dns/tcp server on %s:53)\n' $DNS >>"$WORK/cmds/$CUR"
sleep 0.5
nsx_any $NS_IN sh -c "(printf '\026\003\001\000\005hello'; sleep 1) | ncat -w 3 -p 53 -s $DNS 198.51.100.142 443"
cap_stop
gt benign 192.0.2.95 $DNS:53 "context: inbound DNS over TCP to the published port"
gt reversed_role $DNS:53 198.51.100.142:443 "direction=outbound; dns server initiates TCP from port 53"
gt egress_violation $DNS 198.51.100.142:443 "secondary: same connection; dns egress dns only"

scenario reversed-api-8443 \
    "API server $API serves an inbound HTTPS request on its published port 8443 (from 192.0.2.96), then opens TCP FROM port 8443 to external 198.51.100.143:22 (socat bind=$API:8443)."
https_on $NS_IN $API 8443
ssh_banner $NS_OUT 198.51.100.143 22
cap_start
nsx $NS_OUT curl -sS -k -o /dev/null --interface 192.0.2.96 https://$API:8443/v1/status
sleep 0.5
kill -TERM "${BG_PIDS[0]}"; wait "${BG_PIDS[0]}" 2>/dev/null || true
printf '# (stop the httpd on %s:8443)\n' $API >>"$WORK/cmds/$CUR"
sleep 0.5
nsx_any $NS_IN sh -c "(printf 'SSH-2.0-x\r\n'; sleep 1) | socat -T 3 - TCP4:198.51.100.143:22,bind=$API:8443,reuseaddr"
cap_stop
gt benign 192.0.2.96 $API:8443 "context: inbound HTTPS to the published API port"
gt reversed_role $API:8443 198.51.100.143:22 "direction=outbound; api server initiates TCP from its published port 8443 to an ssh port"
gt egress_violation $API 198.51.100.143:22 "secondary: same connection; api egress dns only"

scenario reversed-ipv6-443 \
    "IPv6: web server $WEB6 opens TCP FROM [$WEB6]:443 to external [$SRV6]:8443 (socat bind), after serving an inbound HTTPS request from $CLI6."
https_on $NS_IN $WEB6 443
https_on $NS_OUT $SRV6 8443
cap_start
nsx $NS_OUT curl -sS -k -g -o /dev/null --interface $CLI6 "https://[$WEB6]/"
sleep 0.5
kill -TERM "${BG_PIDS[0]}"; wait "${BG_PIDS[0]}" 2>/dev/null || true
printf '# (stop the httpd on [%s]:443)\n' $WEB6 >>"$WORK/cmds/$CUR"
sleep 0.5
nsx_any $NS_IN sh -c "(printf 'x'; sleep 1) | socat -T 3 - TCP6:[$SRV6]:8443,bind=[$WEB6]:443,reuseaddr"
cap_stop
gt benign $CLI6 "[$WEB6]:443" "context: inbound HTTPS over IPv6 to the published port"
gt reversed_role "[$WEB6]:443" "[$SRV6]:8443" "direction=outbound; ipv6; web server initiates TCP from 443 to a server port"
gt egress_violation $WEB6 "[$SRV6]:8443" "secondary: same connection; web egress dns,ntp"

scenario reversed-unlisted-1521 \
    "A home host the policy does not list ($LONE: publishes nothing, unrestricted egress) opens TCP FROM port 1521 (a well-known database port, not an ephemeral port on Linux) to external 198.51.100.144:6000."
svc $NS_OUT socat -T 3 TCP4-LISTEN:6000,bind=198.51.100.144,reuseaddr SYSTEM:'sleep 1'; wait_listen $NS_OUT tcp 198.51.100.144 6000
cap_start
nsx_any $NS_IN sh -c "(printf 'hello\n'; sleep 1) | ncat -w 3 -p 1521 -s $LONE 198.51.100.144 6000"
cap_stop
gt reversed_role $LONE:1521 198.51.100.144:6000 "direction=outbound; well-known server port of an unlisted home host"

# ================================================================ 5. unexpected inbound
scenario inbound-ssh-2222 \
    "External 192.0.2.40 logs in with a key to an OpenSSH sshd listening on a non-default port, workstation $WS1:2222 (publishes nothing), and runs two commands over ~3 s."
svc $NS_IN /usr/sbin/sshd -D -e -f "$(sshd_conf $WS1 2222)"; wait_listen $NS_IN tcp $WS1 2222
cap_start
nsx $NS_OUT ssh "${SSH_OPTS[@]}" -p 2222 -b 192.0.2.40 -i "$WORK/client_key" root@$WS1 'uname -a; sleep 2; id'
cap_stop
gt unexpected_inbound 192.0.2.40 $WS1:2222 "direction=inbound; ssh on a non-default port of a workstation"

scenario inbound-ipv6-vnc \
    "IPv6: external $ATK6 completes a session with workstation [$WS6]:5900 (socat listener answering an RFB banner)."
mkexec rfb.sh 'printf "RFB 003.008\n"; head -c 12 >/dev/null; sleep 0.5'
svc $NS_IN socat -T 5 TCP6-LISTEN:5900,bind=[$WS6],reuseaddr EXEC:"$WORK/rfb.sh"; wait_listen $NS_IN tcp "[$WS6]" 5900
cap_start
nsx_any $NS_OUT sh -c "(printf 'RFB 003.008\n'; sleep 1) | ncat -6 -s $ATK6 -w 3 $WS6 5900"
cap_stop
gt unexpected_inbound $ATK6 "[$WS6]:5900" "direction=inbound; ipv6; VNC to a workstation"

# ================================================================ 6. brute force
PASSWORDS=(123456 password admin root toor qwerty letmein changeme 111111 dragon master welcome)
scenario brute-ssh-slow \
    "Slow SSH password guessing: 10 sshpass attempts (one wrong password each) 3 s apart from 192.0.2.45 to ftp host $FTP:22 (OpenSSH, published), ~45 s."
svc $NS_IN /usr/sbin/sshd -D -e -f "$(sshd_conf $FTP)"; wait_listen $NS_IN tcp $FTP 22
cap_start
logcmd $NS_OUT "# for PASS in ${PASSWORDS[*]:0:10} (3 s apart):" timeout $T sshpass -p '$PASS' ssh "${SSH_OPTS[@]}" -o PreferredAuthentications=password -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -b 192.0.2.45 root@$FTP true
for pw in "${PASSWORDS[@]:0:10}"; do
    ip netns exec $NS_OUT timeout $T sshpass -p "$pw" ssh "${SSH_OPTS[@]}" -o PreferredAuthentications=password \
        -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -b 192.0.2.45 root@$FTP true >>"$WORK/logs/$CUR.log" 2>&1 || true
    sleep 3
done
cap_stop
gt brute_force 192.0.2.45 $FTP:22 "ssh password guessing, 10 sessions ~4.5 s apart"

scenario brute-ssh-parallel \
    "Parallel SSH password guessing: 4 sshpass workers x 3 attempts at once from 192.0.2.46 to $FTP:22, all refused."
svc $NS_IN /usr/sbin/sshd -D -e -f "$(sshd_conf $FTP)"; wait_listen $NS_IN tcp $FTP 22
cap_start
logcmd $NS_OUT "# 4 workers in parallel, each for PASS in 3 of ${PASSWORDS[*]}:" timeout $T sshpass -p '$PASS' ssh "${SSH_OPTS[@]}" -o PreferredAuthentications=password -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -b 192.0.2.46 admin@$FTP true
pids=()
for w in 0 1 2 3; do
    ( for pw in "${PASSWORDS[@]:$((w * 3)):3}"; do
        ip netns exec $NS_OUT timeout $T sshpass -p "$pw" ssh "${SSH_OPTS[@]}" -o PreferredAuthentications=password \
            -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -b 192.0.2.46 admin@$FTP true >>"$WORK/logs/$CUR.log" 2>&1 || true
      done ) &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
cap_stop
gt brute_force 192.0.2.46 $FTP:22 "12 guesses from 4 parallel workers in a few seconds"

scenario brute-telnet \
    "Telnet password guessing against a fake telnet login on $FTP:23 (published): 10 sessions from 192.0.2.47, each sending a user name and a password and reading 'Login incorrect'."
mkexec telnetd.sh 'printf "\r\nDebian GNU/Linux 12\r\nlogin: "; read -r u; printf "Password: "; read -r p; sleep 0.3; printf "\r\nLogin incorrect\r\n"'
svc $NS_IN socat TCP4-LISTEN:23,bind=$FTP,reuseaddr,fork EXEC:"$WORK/telnetd.sh"; wait_listen $NS_IN tcp $FTP 23
cap_start
logcmd $NS_OUT "# for PASS in ${PASSWORDS[*]:0:10} (0.5 s apart):" timeout $T sh -c "printf 'root\r\n\$PASS\r\n' | ncat -s 192.0.2.47 -w 3 -i 2 $FTP 23"
for pw in "${PASSWORDS[@]:0:10}"; do
    ip netns exec $NS_OUT timeout $T sh -c "printf 'root\r\n$pw\r\n' | ncat -s 192.0.2.47 -w 3 -i 2 $FTP 23" >>"$WORK/logs/$CUR.log" 2>&1 || true
    sleep 0.5
done
cap_stop
gt brute_force 192.0.2.47 $FTP:23 "telnet login guessing, 10 short sessions"

scenario brute-ftp \
    "FTP password guessing with curl against a fake FTP server on $FTP:21 (published; 220 banner, 331, then 530 for every password): 10 attempts from 192.0.2.48."
mkexec ftpd_fake.sh 'printf "220 ProFTPD Server ready.\r\n"; read -r u; printf "331 Password required for user\r\n"; read -r p; sleep 0.2; printf "530 Login incorrect.\r\n"; read -r q; printf "221 Goodbye.\r\n"'
svc $NS_IN socat TCP4-LISTEN:21,bind=$FTP,reuseaddr,fork EXEC:"$WORK/ftpd_fake.sh"; wait_listen $NS_IN tcp $FTP 21
cap_start
logcmd $NS_OUT "# for PASS in ${PASSWORDS[*]:0:10}:" timeout $T curl -sS --interface 192.0.2.48 --max-time 5 "ftp://admin:\$PASS@$FTP/"
for pw in "${PASSWORDS[@]:0:10}"; do
    ip netns exec $NS_OUT timeout $T curl -sS --interface 192.0.2.48 --max-time 5 "ftp://admin:$pw@$FTP/" >>"$WORK/logs/$CUR.log" 2>&1 || true
    sleep 0.3
done
cap_stop
gt brute_force 192.0.2.48 $FTP:21 "ftp login guessing (curl), 10 sessions"

scenario brute-mysql \
    "MySQL-like password guessing: a fake server on db $DB:3306 (published) sends a greeting and an 'Access denied' error; 12 ncat sessions from 192.0.2.45, 1 s apart."
mkexec mysqld_fake.sh 'printf "J\000\000\000\n8.0.36\000\001\000\000\000abcdefgh\000\377\367\010\002\000\377\201\025\000\000\000\000\000\000\000\000\000\000ijklmnopqrst\000mysql_native_password\000"; head -c 40 >/dev/null; printf "\x4b\000\000\002\377\025\004#28000Access denied for user root"'
svc $NS_IN socat TCP4-LISTEN:3306,bind=$DB,reuseaddr,fork EXEC:"$WORK/mysqld_fake.sh"; wait_listen $NS_IN tcp $DB 3306
cap_start
logcmd $NS_OUT "# 12 times, 1 s apart:" timeout $T sh -c "(sleep 0.2; head -c 64 /dev/urandom) | ncat -s 192.0.2.45 -w 2 -i 2 $DB 3306"
for i in $(seq 1 12); do
    ip netns exec $NS_OUT timeout $T sh -c "(sleep 0.2; head -c 64 /dev/urandom) | ncat -s 192.0.2.45 -w 2 -i 2 $DB 3306" >/dev/null 2>>"$WORK/logs/$CUR.log" || true
    sleep 1
done
cap_stop
gt brute_force 192.0.2.45 $DB:3306 "mysql login guessing, 12 sessions"

# ================================================================ 7. egress
scenario egress-db-udp-tcp \
    "Database server $DB (egress: none) sends syslog-style UDP datagrams to external 198.51.100.145:514 (a listener that never answers) and pushes data over TCP to 198.51.100.145:9000."
svc $NS_OUT socat -u UDP4-RECV:514,bind=198.51.100.145 OPEN:/dev/null; wait_listen $NS_OUT udp 198.51.100.145 514
svc $NS_OUT socat -T 3 TCP4-LISTEN:9000,bind=198.51.100.145,reuseaddr OPEN:/dev/null; wait_listen $NS_OUT tcp 198.51.100.145 9000
cap_start
nsx $NS_IN sh -c "for i in 1 2 3; do printf '<13>db01 backup: chunk %s\n' \$i; sleep 0.3; done | socat -u - UDP4-SENDTO:198.51.100.145:514,bind=$DB"
nsx_any $NS_IN sh -c "head -c 3000 /dev/urandom | base64 | ncat -s $DB -w 3 --send-only 198.51.100.145 9000"
cap_stop
gt egress_violation $DB 198.51.100.145:514 "direction=outbound; udp, one-way (no reply); db egress=[]"
gt egress_violation $DB 198.51.100.145:9000 "direction=outbound; tcp; db egress=[]"

scenario egress-api \
    "API server $API (egress: dns) fetches https://198.51.100.146/ (curl) and syncs time from 198.51.100.147:123 (NTP, answered); over IPv6 [$API6] posts to [$SRV6]:8080."
https_on $NS_OUT 198.51.100.146 443
svc $NS_OUT "${UDPSVC[@]}" serve ntp --bind 198.51.100.147; wait_listen $NS_OUT udp 198.51.100.147 123
http_on $NS_OUT $SRV6 8080
cap_start
nsx $NS_IN curl -sS -k -o /dev/null --interface $API https://198.51.100.146/
nsx $NS_IN "${UDPSVC[@]}" query ntp --bind $API --server 198.51.100.147 --count 2
nsx $NS_IN curl -sS -g -o /dev/null --interface $API6 -d 'k=v' "http://[$SRV6]:8080/ingest"
cap_stop
gt egress_violation $API 198.51.100.146:443 "direction=outbound; https from a role allowed dns only"
gt egress_violation $API 198.51.100.147:123 "direction=outbound; udp ntp, not in the api role's egress"
gt egress_violation $API6 "[$SRV6]:8080" "direction=outbound; ipv6 http to 8080"

# ================================================================ 8. outbound SMTP
scenario smtp-workstation-multi \
    "Workstation $WS2 (not a mail server) sends 4 messages with swaks straight to external MX 198.51.100.148:25, 2 s apart."
svc $NS_OUT "$PY" "$HERE/smtp_sink.py" --bind 198.51.100.148 --name mx.example.org; wait_listen $NS_OUT tcp 198.51.100.148 25
cap_start
for i in 1 2 3 4; do
    nsx $NS_IN swaks --server 198.51.100.148 --port 25 --local-interface $WS2 --helo pc16.corp.example \
        --from "user$i@corp.example" --to "victim$i@example.org" --header "Subject: offer $i" --body 'cheap' --timeout 10
    sleep 2
done
cap_stop
gt outbound_smtp $WS2 198.51.100.148:25 "direction=outbound; 4 SMTP transactions from a workstation"

# ================================================================ 9. open proxy
scenario proxy-connect-only \
    "Web host $PROXY runs an open forward proxy on its published port 8080; external 192.0.2.90 only uses CONNECT (curl -x to https://198.51.100.149/), which the host tunnels to 198.51.100.149:443."
svc $NS_IN "$PY" "$HERE/proxy.py" --bind $PROXY --port 8080 --source $PROXY; wait_listen $NS_IN tcp $PROXY 8080
https_on $NS_OUT 198.51.100.149 443
cap_start
nsx $NS_OUT curl -sS -k -o /dev/null --interface 192.0.2.90 -x http://$PROXY:8080 https://198.51.100.149/
sleep 0.5
nsx $NS_OUT curl -sS -k -o /dev/null --interface 192.0.2.90 -x http://$PROXY:8080 https://198.51.100.149/login
cap_stop
gt open_proxy 192.0.2.90 $PROXY:8080 "CONNECT 198.51.100.149:443 tunnelled, twice"
gt egress_violation $PROXY 198.51.100.149:443 "secondary: the proxy's outbound leg; web egress dns,ntp"

scenario proxy-get-only \
    "Web server $WEB runs an open forward proxy on port 80; external 192.0.2.91 only sends absolute-form GETs (http://198.51.100.152/ and /a), relayed to 198.51.100.152:80."
svc $NS_IN "$PY" "$HERE/proxy.py" --bind $WEB --port 80 --source $WEB; wait_listen $NS_IN tcp $WEB 80
http_on $NS_OUT 198.51.100.152 80
cap_start
nsx $NS_OUT curl -sS -o /dev/null --interface 192.0.2.91 -x http://$WEB:80 http://198.51.100.152/
sleep 0.5
nsx $NS_OUT curl -sS -o /dev/null --interface 192.0.2.91 -x http://$WEB:80 http://198.51.100.152/a
cap_stop
gt open_proxy 192.0.2.91 $WEB:80 "absolute-form GET relayed, twice"
gt egress_violation $WEB 198.51.100.152:80 "secondary: the proxy's outbound leg; web egress dns,ntp"

# ================================================================ 10. benign traffic that looks odd
SITES=(198.51.100.171 198.51.100.172 198.51.100.173 198.51.100.174 198.51.100.175 198.51.100.176)
scenario benign-browser \
    "A browser-like client: workstation $WS3 fetches 6 pages from each of 6 sites (${SITES[*]}), over HTTP and HTTPS, with curl --parallel (up to 12 connections at once, Connection: close so every fetch is its own connection)."
for s in "${SITES[@]}"; do http_on $NS_OUT $s 80 site; https_on $NS_OUT $s 443 site; done
urls=()
for s in "${SITES[@]}"; do for p in / /a.css /b.js /c.png; do urls+=("http://$s$p"); done; for p in / /api; do urls+=("https://$s$p"); done; done
cap_start
logcmd $NS_IN "# URLs: http://SITE/, /a.css, /b.js, /c.png, https://SITE/, /api for SITE in ${SITES[*]}:" timeout $T curl -sS -k --parallel --parallel-max 12 -H 'Connection: close' --interface $WS3 '-o /dev/null URL...'
ip netns exec $NS_IN timeout $T curl -sS -k --parallel --parallel-max 12 -H 'Connection: close' --interface $WS3 \
    $(for u in "${urls[@]}"; do printf -- '-o /dev/null %s ' "$u"; done) >>"$WORK/logs/$CUR.log" 2>&1
cap_stop
for s in "${SITES[@]}"; do gt benign $WS3 $s:443 "browser-like parallel fetches (http and https)"; done

scenario benign-ftp-passive \
    "Passive FTP both ways: external 192.0.2.97 downloads 5 files from the published ftp server $FTP:21 (pyftpdlib, EPSV data connections to high ports); workstation $WS1 lists and downloads 3 files from external 198.51.100.153:21, then 1 file in active mode (PORT: the server connects back)."
svc $NS_IN "${FTPD[@]}" -i $FTP -p 21 -d "$WORK/ftp"; wait_listen $NS_IN tcp $FTP 21
svc $NS_OUT "${FTPD[@]}" -i 198.51.100.153 -p 21 -d "$WORK/ftp"; wait_listen $NS_OUT tcp 198.51.100.153 21
cap_start
nsx $NS_OUT curl -sS --interface 192.0.2.97 $(for i in 1 2 3 4 5; do printf -- '-o /dev/null ftp://%s/report%s.txt ' $FTP $i; done)
nsx $NS_IN curl -sS -o /dev/null --interface $WS1 ftp://198.51.100.153/
nsx $NS_IN curl -sS --interface $WS1 $(for i in 1 2 3; do printf -- '-o /dev/null ftp://198.51.100.153/report%s.txt ' $i; done)
nsx $NS_IN curl -sS -o /dev/null --interface $WS1 -P $WS1 ftp://198.51.100.153/report4.txt
cap_stop
gt benign 192.0.2.97 $FTP:21 "passive ftp download, data connections to the server's high ports"
gt benign $WS1 198.51.100.153:21 "passive and active ftp from a workstation (egress allows the ftp group tcp/21)"

scenario benign-dns-ntp-ping \
    "Workstation $WS1 resolves names over UDP and TCP (dig +tcp) from 198.51.100.154, syncs time with 198.51.100.155 (NTP), pings 198.51.100.155 and is pinged by 192.0.2.98; the web server $WEB answers ICMP echo too."
svc $NS_OUT "${UDPSVC[@]}" serve dns --bind 198.51.100.154; wait_listen $NS_OUT udp 198.51.100.154 53
svc $NS_OUT "${UDPSVC[@]}" serve dns --tcp --bind 198.51.100.154; wait_listen $NS_OUT tcp 198.51.100.154 53
svc $NS_OUT "${UDPSVC[@]}" serve ntp --bind 198.51.100.155; wait_listen $NS_OUT udp 198.51.100.155 123
cap_start
nsx $NS_IN dig +short +tries=1 -b $WS1 @198.51.100.154 www.example.com
nsx $NS_IN dig +short +tcp +tries=1 -b $WS1 @198.51.100.154 big.example.com
nsx $NS_IN "${UDPSVC[@]}" query dns --tcp --bind $WS1 --server 198.51.100.154 a.example.com b.example.com c.example.com
nsx $NS_IN "${UDPSVC[@]}" query ntp --bind $WS1 --server 198.51.100.155 --count 3
nsx $NS_IN ping -c 3 -i 0.2 -I $WS1 198.51.100.155
nsx $NS_OUT ping -c 3 -i 0.2 -I 192.0.2.98 $WS1
nsx $NS_OUT ping -c 3 -i 0.2 -I 192.0.2.98 $WEB
cap_stop
gt benign $WS1 198.51.100.154:53 "dns over udp and tcp"
gt benign $WS1 198.51.100.155:123 "ntp"
gt benign 192.0.2.98 $WS1 "icmp echo"

scenario benign-http-many \
    "Many short HTTP requests: external 192.0.2.99 makes 60 separate connections to the published web server $WEB:80 in ~6 s, another 20 to $WEB:443; workstation $WS2 makes 40 separate requests to external 198.51.100.156:80. A TLS session from $WS2 to 198.51.100.157:443 stays open ~25 s."
http_on $NS_IN $WEB 80; https_on $NS_IN $WEB 443
http_on $NS_OUT 198.51.100.156 80
svc $NS_OUT socat -T 30 OPENSSL-LISTEN:443,bind=198.51.100.157,reuseaddr,cert="$WORK/tls.crt",key="$WORK/tls.key",verify=0 EXEC:cat
wait_listen $NS_OUT tcp 198.51.100.157 443
cap_start
logcmd $NS_IN timeout $T sh -c "for i in \$(seq 1 12); do echo keepalive \$i; sleep 2; done | socat -T 10 - OPENSSL:198.51.100.157:443,bind=$WS2,verify=0" '&'
ip netns exec $NS_IN timeout $T sh -c "for i in \$(seq 1 12); do echo keepalive \$i; sleep 2; done | socat -T 10 - OPENSSL:198.51.100.157:443,bind=$WS2,verify=0" >>"$WORK/logs/$CUR.log" 2>&1 &
LONG_PID=$!
logcmd $NS_OUT "# 60 times, 0.1 s apart:" timeout $T curl -sS -o /dev/null --interface 192.0.2.99 http://$WEB/item
for i in $(seq 1 60); do ip netns exec $NS_OUT timeout $T curl -sS -o /dev/null --interface 192.0.2.99 "http://$WEB/item$i" || true; sleep 0.1; done
logcmd $NS_OUT "# 20 times:" timeout $T curl -sS -k -o /dev/null --interface 192.0.2.99 https://$WEB/
for i in $(seq 1 20); do ip netns exec $NS_OUT timeout $T curl -sS -k -o /dev/null --interface 192.0.2.99 "https://$WEB/s$i" || true; done
logcmd $NS_IN "# 40 times:" timeout $T curl -sS -o /dev/null --interface $WS2 http://198.51.100.156/
for i in $(seq 1 40); do ip netns exec $NS_IN timeout $T curl -sS -o /dev/null --interface $WS2 "http://198.51.100.156/p$i" || true; done
wait "$LONG_PID" || echo "$ME: warning: long-lived session exited non-zero" >&2
cap_stop
gt benign 192.0.2.99 $WEB:80 "60 short HTTP connections to the published port"
gt benign 192.0.2.99 $WEB:443 "20 short HTTPS connections to the published port"
gt benign $WS2 198.51.100.156:80 "40 short HTTP connections out"
gt benign $WS2 198.51.100.157:443 "long-lived TLS session, ~25 s"

scenario benign-traceroute \
    "traceroute (UDP to high ports 33434+, 16 probes in flight, one hop: every probe answered by ICMP port unreachable) from external 192.0.2.98 to web server $WEB, and from workstation $WS1 to external 198.51.100.158."
cap_start
nsx_any $NS_OUT traceroute -n -w 1 -s 192.0.2.98 $WEB
nsx_any $NS_IN traceroute -n -w 1 -s $WS1 198.51.100.158
cap_stop
gt benign 192.0.2.98 $WEB "one traceroute: not a scan"
gt benign $WS1 198.51.100.158 "one traceroute out: not a scan, not an egress violation"

scenario benign-client-ports \
    "Client ports that look like server ports: a Windows-like client $WIN connects from source ports 1433, 1434 and 3389 (ephemeral on Windows XP: 1025-5000) to external web servers 198.51.100.159:80/443; workstation $WS1 reuses the same 5-tuple (source port 40001) for a second connection after the first closed."
http_on $NS_OUT 198.51.100.159 80; https_on $NS_OUT 198.51.100.159 443
mkexec http_once.sh 'head -c 30 >/dev/null; printf "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"'
svc $NS_OUT socat TCP4-LISTEN:80,bind=198.51.100.158,reuseaddr,fork EXEC:"$WORK/http_once.sh"; wait_listen $NS_OUT tcp 198.51.100.158 80
cap_start
nsx $NS_IN curl -sS -o /dev/null --interface $WIN --local-port 1433 http://198.51.100.159/
nsx $NS_IN curl -sS -o /dev/null --interface $WIN --local-port 1434 http://198.51.100.159/x
nsx $NS_IN curl -sS -k -o /dev/null --interface $WIN --local-port 3389 https://198.51.100.159/
for i in 1 2; do
    nsx_any $NS_IN sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | ncat -p 40001 -s $WS1 -w 3 198.51.100.158 80"
    sleep 1
done
cap_stop
gt benign $WIN 198.51.100.159:80 "client from ephemeral ports 1433/1434"
gt benign $WIN 198.51.100.159:443 "client from ephemeral port 3389"
gt benign $WS1 198.51.100.158:80 "same 5-tuple used twice, one after the other"

scenario benign-mail \
    "Mail server $MAIL delivers 3 messages to external MX 198.51.100.148:25 and receives one from external 192.0.2.96 on its published port 25."
svc $NS_OUT "$PY" "$HERE/smtp_sink.py" --bind 198.51.100.148 --name mx.example.org; wait_listen $NS_OUT tcp 198.51.100.148 25
svc $NS_IN "$PY" "$HERE/smtp_sink.py" --bind $MAIL --name mail.corp.example; wait_listen $NS_IN tcp $MAIL 25
cap_start
for i in 1 2 3; do
    nsx $NS_IN swaks --server 198.51.100.148 --port 25 --local-interface $MAIL --helo mail.corp.example \
        --from "news@corp.example" --to "client$i@example.org" --header "Subject: newsletter $i" --body 'hello' --timeout 10
done
nsx $NS_OUT swaks --server $MAIL --port 25 --local-interface 192.0.2.96 --helo mx.partner.example \
    --from "bob@partner.example" --to "alice@corp.example" --header 'Subject: meeting' --body 'tomorrow' --timeout 10
cap_stop
gt benign $MAIL 198.51.100.148:25 "mail server sending mail"
gt benign 192.0.2.96 $MAIL:25 "inbound mail to the published port"

# ================================================================ outputs
CUR=done
cp "$GT" "$OUT/ground-truth.tsv"

cat >"$OUT/policy.toml" <<'EOF'
# backflow policy for the holdout captures in this directory
# (scripts/captures/generate-holdout.sh), written only with the documented
# policy keys. Home: 10.77.0.0/16, 172.16.0.0/12, 192.168.0.0/16, fd00::/8;
# 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32 are "the internet".
home_nets = ["10.77.0.0/16", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"]

[service_groups]
ftp = ["tcp/21"]

[[hosts]]
addr = ["172.16.5.10", "fd00:5::10"]
role = "web"
services = ["web"]

# A second web host, serving on 8080.
[[hosts]]
addr = "172.16.5.11"
role = "web"
services = ["tcp/8080"]

# A legacy box: ftp, ssh and telnet published.
[[hosts]]
addr = "172.16.5.21"
role = "ftp"
services = ["ftp", "ssh", "tcp/23"]

[[hosts]]
addr = ["172.16.5.40", "fd00:5::40"]
role = "api"
services = ["tcp/8443"]

[[hosts]]
addr = "172.16.5.53"
role = "dns"
services = ["dns"]

[[hosts]]
addr = "192.168.77.25"
role = "mail"
services = ["smtp"]

[[hosts]]
addr = "192.168.77.30"
role = "db"
services = ["tcp/3306"]

[[hosts]]
addr = ["10.77.8.0/24", "fd00:77::/64"]
role = "workstation"

# The ops host inside the workstation range (the more specific entry wins).
[[hosts]]
addr = "10.77.8.50"
role = "ops"

# 10.77.9.0/27 (sweep targets) and 172.16.9.9 are deliberately not listed.

[roles.web]
egress = ["dns", "ntp"]

[roles.ftp]
egress = ["dns"]

[roles.api]
egress = ["dns"]

[roles.dns]
egress = ["dns"]

[roles.mail]
egress = ["smtp", "dns"]

[roles.db]
egress = []

[roles.workstation]
egress = ["web", "dns", "ntp", "mail-client", "ftp"]

[roles.ops]
egress = ["any"]
EOF

say "verifying ground truth against the packets"
"$PY" "$HERE/verify.py" "$OUT" >"$WORK/verify.txt" 2>&1 || { cat "$WORK/verify.txt"; exit 1; }
cat "$WORK/verify.txt"

# ---------------------------------------------------------------- README
{
cat <<EOF
# backflow holdout captures

A second labelled set of real-tool captures, made independently of
\`pcaps/lab\` to check that the detectors hold up on traffic they were not
tuned on: other addresses and home/role layout, another policy file, other
nmap/hping3/masscan options and timings, other services, and benign traffic
chosen because it tends to cause false positives. \`tests/detect_holdout.rs\`
replays every file with \`policy.toml\` and scores the detectors against
\`ground-truth.tsv\`.

Generated by \`scripts/captures/generate-holdout.sh\` on $(date -u +%Y-%m-%d) (run as root:
\`sudo bash scripts/captures/generate-holdout.sh [OUTDIR]\`, default OUTDIR
\`pcaps/holdout\`; took $(( ($(date +%s) - START + 30) / 60 )) minute(s)). Everything here is
regenerated by that script; do not edit by hand.

## How they were made

Two network namespaces joined by one veth pair, created entirely inside the
namespaces (helpers shared with generate.sh in \`scripts/captures/lib.sh\`);
nothing is routed anywhere else (only on-link routes for the other side's
ranges, no default route):

| namespace | interface | addresses |
| --- | --- | --- |
| \`bfho-in\` (home) | \`ho-in\` | 172.16.5.10 web (+fd00:5::10), .11 web/proxy on 8080, .21 legacy ftp/ssh/telnet, .40 api (+fd00:5::40), .53 dns; 192.168.77.25 mail, .30 db; 10.77.8.15/.16/.17 workstations (+fd00:77::15), .50 ops, .60 Windows-like client; 10.77.9.1-30 sweep targets; 172.16.9.9 unlisted |
| \`bfho-out\` (internet) | \`ho-out\` | 192.0.2.10-20, .30, .40, .45-.48, .51-.52, .60-.63, .70, .90-.91, .95-.99 (attackers, decoys, clients); 198.51.100.140-191 (servers, sweep targets); 2001:db8:a::66, 2001:db8:a::67, 2001:db8:b::20 |

Routes: \`bfho-in\`: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32 dev ho-in; \`bfho-out\`: 172.16.5.0/24, 172.16.9.0/24,
192.168.77.0/24, 10.77.8.0/24, 10.77.9.0/24, fd00:5::/64, fd00:77::/64 dev
ho-out. 203.0.113.0/24 is assigned nowhere: it is only a spoofed source.
The \`--rand-source\` floods get their sources rewritten into it by an nft
rule in \`bfho-out\` (\`ip saddr set numgen random mod 254 map {...}\`), and
permanent neighbour entries in \`bfho-in\` send the victim's replies to those
addresses onto the wire, where \`bfho-out\` drops them (it does not forward).
masscan runs its own TCP/IP stack on \`ho-out\` inside \`bfho-out\`, so the
namespace confines it like every other tool. \`net.ipv4.icmp_ratelimit=0\` in
\`bfho-in\` (every closed UDP port answers); \`bfho-out\` keeps Linux's default
ICMP rate limit.

Every capture is \`tcpdump -i ho-in -n -U -Z root -w FILE\` run inside
\`bfho-in\`, started before the traffic and stopped with SIGINT ~1 s after it.
Every tool runs under \`timeout $T\` with bounded counts. nmap always has
\`-n -Pn --max-retries 1\` and each scenario chooses its timing (-T2 to -T5,
\`--scan-delay\`, \`--max-rate\`); the veth has no latency, so only the
scenarios that ask for slowness are slow.

### Tool versions

| tool | version |
| --- | --- |
$(lab_version_rows kernel iproute2 tcpdump nmap hping3 masscan traceroute nft sshd sshpass curl swaks socat ncat openssl dig ping python3 pyftpdlib tshark)

## Ground truth

Same format as \`pcaps/lab/ground-truth.tsv\` (see \`pcaps/lab/README.md\`):
one line per expected finding, \`file kind source target notes\`; \`benign\`
lines are traffic that must raise no alert; \`secondary:\` lines are real
consequences of the primary finding in the same file that may be reported
separately or not at all.

Decisions this set documents:
- A ping sweep raises no alert. ICMP echo is not a probe for the scan
  detectors (a monitoring host pinging live hosts is not scanning), and nmap
  \`-sn --disable-arp-ping\` sends its other probes (SYN to 443, ACK to 80)
  only to hosts that did not answer the echo first: 2 of 30 here. Its TCP
  probes would count like any other had they reached enough hosts (a sweep of
  dark addresses, or \`-PS\`/\`-PA\` host discovery, is a \`port_sweep\`).
  nmap's default ARP ping on a local segment never reaches IP.
- A UDP flood is no kind backflow reports (\`syn_flood\` is TCP); its line is
  \`benign\`: the random sources must not raise scans, sweeps or anything else.
- One traceroute (16 UDP probes to 33434+ refused by ICMP) is not a scan, and
  from a host whose role does not allow those ports it is not an egress
  violation either: nothing was opened.

\`scripts/captures/verify.py OUTDIR\` re-checks every line against the packets
(tshark); its output for this run:

\`\`\`
$(cat "$WORK/verify.txt")
\`\`\`

## Files
EOF
lab_scenario_sections
} >"$OUT/README.md"

say "done: $(ls "$OUT"/*.pcap | wc -l) pcaps, ground truth and README in $OUT"
