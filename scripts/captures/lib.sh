# Helpers shared by the capture generators (generate.sh, generate-holdout.sh).
# Sourced, not run. The caller sets, before calling lab_init:
#
#   ME       generator name for messages ("generate.sh")
#   HERE     this directory;  OUT  output directory
#   NS_IN, NS_OUT, IF_IN, IF_OUT   namespace and veth names (unique per generator)
#   T        timeout (s) around every tool;  PY  python3 to run the helpers
#
# Safety: every namespace and address is created by the caller inside its own
# namespaces; the helpers only run tools inside them (ip netns exec), each
# under `timeout $T`, and delete the caller's namespaces by name on exit.

lab_require_root() {
    if [[ $EUID -ne 0 ]]; then
        echo "$ME: must run as root (network namespaces, raw sockets): sudo bash $0 ${1:-}" >&2
        exit 1
    fi
}

# lab_check_tools ASSOC: ASSOC maps tool -> Debian package; exits naming the
# packages to install when a tool is missing.
lab_check_tools() {
    local -n pkg=$1
    local missing=() t
    for t in "${!pkg[@]}"; do
        if [[ $t == sshd ]]; then [[ -x /usr/sbin/sshd ]] || missing+=("$t")
        elif [[ $t == python3 ]]; then [[ -n $PY ]] || missing+=("$t")
        elif [[ $t == python3-* ]]; then "$PY" -c "import ${t#python3-}" 2>/dev/null || missing+=("$t")
        else command -v "$t" >/dev/null 2>&1 || missing+=("$t"); fi
    done
    if ((${#missing[@]})); then
        local pk
        pk=$(for t in "${missing[@]}"; do echo "${pkg[$t]}"; done | sort -u | tr '\n' ' ')
        echo "$ME: missing tools: ${missing[*]}" >&2
        echo "  install with: DEBIAN_FRONTEND=noninteractive apt-get install -y $pk" >&2
        exit 1
    fi
}

# lab_init WORKPREFIX: output and work directories, ground-truth header.
lab_init() {
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    mkdir -p "$WORK/cmds" "$WORK/desc" "$WORK/logs"
    GT=$WORK/ground-truth.tsv
    printf 'file\tkind\tsource\ttarget\tnotes\n' >"$GT"
    ORDER=()
    CUR=setup
    BG_PIDS=()
    CAP_PID=
    START=$(date +%s)
}

say() { printf '[%3ds] %s\n' $(($(date +%s) - START)) "$*"; }

# ---------------------------------------------------------------- logging
QRE='^[][A-Za-z0-9_./:=,@%+^-]+$'
qargs() {
    local out="" a
    for a in "$@"; do
        if [[ $a =~ $QRE ]]; then out+="$a "; else out+="'${a//\'/\'\\\'\'}' "; fi
    done
    out=${out% }
    out=${out//$WORK/\$WORK}
    out=${out//$HERE/scripts/captures}
    out=${out//$OUT/\$OUTDIR}
    printf '%s' "$out"
}
# logcmd NS [# comment] CMD... [&]  -> "NS# CMD" line in the scenario's command log
logcmd() {
    local ns=$1 pre="" post=""; shift
    if [[ ${1:-} == '#'* ]]; then pre="$1 "; shift; fi
    if [[ ${!#} == '&' ]]; then post=" &"; set -- "${@:1:$#-1}"; fi
    printf '%s# %s%s%s\n' "$ns" "$pre" "$(qargs "$@")" "$post" >>"$WORK/cmds/$CUR"
}

# run in the root context (namespace management only)
rc() { logcmd root "$@"; "$@"; }
# run a tool in a namespace, bounded by timeout; must succeed
nsx() { local ns=$1; shift; logcmd "$ns" timeout $T "$@"; ip netns exec "$ns" timeout $T "$@" >>"$WORK/logs/$CUR.log" 2>&1; }
# same, but a non-zero exit is expected/allowed (failed logins, scans with exit!=0)
nsx_any() {
    local ns=$1; shift; logcmd "$ns" timeout $T "$@"
    local r=0; ip netns exec "$ns" timeout $T "$@" >>"$WORK/logs/$CUR.log" 2>&1 || r=$?
    echo "exit=$r" >>"$WORK/logs/$CUR.log"
}
# background service in a namespace (stopped by stop_svcs)
svc() {
    local ns=$1; shift; logcmd "$ns" timeout $T "$@" '&'
    ip netns exec "$ns" timeout $T "$@" >>"$WORK/logs/$CUR.svc.log" 2>&1 &
    BG_PIDS+=($!)
}
stop_svcs() {
    local p
    for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    BG_PIDS=()
}
# wait until ADDR:PORT is listening in NS (proto tcp|udp)
wait_listen() {
    local ns=$1 proto=$2 addr=$3 port=$4 i opt=-Hltn
    [[ $proto == udp ]] && opt=-Hlun
    for i in $(seq 1 50); do
        if ip netns exec "$ns" ss $opt "( sport = :$port )" 2>/dev/null | grep -qF "$addr:$port"; then return 0; fi
        sleep 0.1
    done
    echo "$ME: $proto $addr:$port never started listening in $ns (see $WORK/logs/$CUR.svc.log)" >&2
    cat "$WORK/logs/$CUR.svc.log" >&2 || true
    return 1
}

# ---------------------------------------------------------------- scenario bookkeeping
scenario() {           # scenario NAME "what it shows"
    CUR=$1; ORDER+=("$1")
    : >"$WORK/cmds/$CUR"
    printf '%s\n' "$2" >"$WORK/desc/$CUR"
    say "scenario $CUR"
}
# mkexec NAME 'bash commands': a tiny responder script for socat EXEC: (socat's
# address parser would mangle backslashes, ':' and ',' inside SYSTEM:'...')
mkexec() {
    local f=$WORK/$1; shift
    printf '#!/bin/bash\n%s\n' "$*" >"$f"; chmod +x "$f"
    printf '# %s contains: %s\n' "\$WORK/${f##*/}" "$*" >>"$WORK/cmds/$CUR"
}
gt() { printf '%s\t%s\t%s\t%s\t%s\n' "$CUR.pcap" "$1" "$2" "$3" "$4" >>"$GT"; }

cap_start() {
    local f=$OUT/$CUR.pcap
    rm -f "$f"
    logcmd "$NS_IN" timeout $T tcpdump -i $IF_IN -n -U -Z root -w "$f" '&'
    ip netns exec "$NS_IN" timeout $T tcpdump -i $IF_IN -n -U -Z root -w "$f" 2>"$WORK/logs/$CUR.tcpdump" &
    CAP_PID=$!
    local i
    for i in $(seq 1 50); do grep -q 'listening on' "$WORK/logs/$CUR.tcpdump" 2>/dev/null && break; sleep 0.1; done
    sleep 0.5
}
cap_stop() {
    sleep 1
    kill -INT "$CAP_PID" 2>/dev/null || echo "$ME: warning: tcpdump for $CUR had already exited" >&2
    wait "$CAP_PID" 2>/dev/null || true
    CAP_PID=
    sleep 1
    stop_svcs
    say "  $(grep -h 'packets captured' "$WORK/logs/$CUR.tcpdump" || echo '? packets captured')"
}

# ---------------------------------------------------------------- cleanup
del_ns() {
    local ns=$1 p
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.2
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
}
cleanup() {
    local r=$?
    set +e
    [[ -n $CAP_PID ]] && kill -INT "$CAP_PID" 2>/dev/null && wait "$CAP_PID" 2>/dev/null
    stop_svcs
    del_ns $NS_IN
    del_ns $NS_OUT
    if ((r == 0)); then rm -rf "$WORK"; else echo "$ME: failed (exit $r); logs kept in $WORK" >&2; fi
}
# lab_take_namespaces: removes this generator's own namespaces left by an
# earlier, interrupted run (by exact name), and deletes them again on exit.
lab_take_namespaces() {
    local ns
    for ns in $NS_IN $NS_OUT; do
        if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns"; then
            say "removing stale namespace $ns"
            del_ns "$ns"
        fi
    done
    trap cleanup EXIT
}

# ---------------------------------------------------------------- topology
# lab_veth_pair: the two namespaces joined by one veth pair, links up, no
# router advertisements or DAD; the home side answers every closed UDP port
# (Linux rate-limits ICMP errors to ~1/s per peer by default, which would
# stretch a UDP scan to minutes).
lab_veth_pair() {
    local pair k
    rc ip netns add $NS_IN
    rc ip netns add $NS_OUT
    rc ip -n $NS_IN link add $IF_IN type veth peer name $IF_OUT netns $NS_OUT
    for pair in "$NS_IN $IF_IN" "$NS_OUT $IF_OUT"; do
        set -- $pair
        for k in net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
                 net.ipv6.conf.$2.accept_ra=0 net.ipv6.conf.$2.router_solicitations=0 \
                 net.ipv6.conf.$2.accept_dad=0; do
            rc ip netns exec "$1" sysctl -qw "$k"
        done
    done
    rc ip netns exec $NS_IN sysctl -qw net.ipv4.icmp_ratelimit=0
    rc ip netns exec $NS_IN sysctl -qw net.ipv6.icmp.ratelimit=0
}
# lab_addrs NS IF A... : assigns host addresses (/32, /128 nodad) and logs one line
lab_addrs() {
    local ns=$1 dev=$2 a; shift 2
    local v4=() v6=()
    for a in "$@"; do
        if [[ $a == *:* ]]; then ip -n "$ns" addr add "$a/128" dev "$dev" nodad; v6+=("$a")
        else ip -n "$ns" addr add "$a/32" dev "$dev"; v4+=("$a"); fi
    done
    ((${#v4[@]})) && logcmd root "# for A in ${v4[*]}:" ip -n "$ns" addr add '$A/32' dev "$dev"
    ((${#v6[@]})) && logcmd root "# for A in ${v6[*]}:" ip -n "$ns" addr add '$A/128' dev "$dev" nodad
    return 0
}
# spoof_neigh ADDR...: permanent neighbour entries on the home side pointing
# spoofed (unassigned) sources at the outside veth, so the victim's replies go
# onto the wire, where the outside namespace drops them (it does not forward).
spoof_neigh() { local a; for a in "$@"; do ip -n $NS_IN neigh replace "$a" lladdr "$OUT_MAC" dev $IF_IN nud permanent; done; }
lab_links_up() {
    local ns
    for ns in $NS_IN $NS_OUT; do rc ip -n $ns link set lo up; done
    rc ip -n $NS_IN link set $IF_IN up
    rc ip -n $NS_OUT link set $IF_OUT up
}

# Throw-away keys and certificate in $WORK, and sshd_conf ADDR [PORT].
lab_keys() {
    rc ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh_host_ed25519_key"
    rc ssh-keygen -q -t ed25519 -N '' -f "$WORK/client_key"
    cp "$WORK/client_key.pub" "$WORK/authorized_keys"
    rc openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj /CN=bflab.example \
        -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
    mkdir -p /run/sshd             # sshd's privilege-separation directory
}
sshd_conf() {                  # sshd_conf LISTENADDR [PORT] -> path of a config file
    local port=${2:-22}
    local f=$WORK/sshd_$1_$port.conf
    cat >"$f" <<EOF
ListenAddress $1
Port $port
HostKey $WORK/ssh_host_ed25519_key
PidFile $WORK/sshd_$1_$port.pid
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AuthorizedKeysFile $WORK/authorized_keys
StrictModes no
UseDNS no
MaxStartups 50:30:100
MaxAuthTries 3
Subsystem sftp internal-sftp
EOF
    echo "$f"
}

# ---------------------------------------------------------------- README parts
ver() { "$@" 2>&1 | grep -v 'Running as user' | head -1; }
# lab_version_rows TOOL... : "| tool | version |" rows for the tools named
lab_version_rows() {
    local t
    for t in "$@"; do
        case $t in
            kernel) echo "| kernel | $(uname -sr) |" ;;
            iproute2) echo "| iproute2 | $(ver ip -V) |" ;;
            tcpdump) echo "| tcpdump | $(ver tcpdump --version) |"
                     echo "| libpcap | $(tcpdump --version 2>&1 | sed -n 2p) |" ;;
            nmap) echo "| nmap | $(ver nmap --version) |" ;;
            hping3) echo "| hping3 | $(ver hping3 -v) |" ;;
            masscan) echo "| masscan | $(masscan --version 2>&1 | grep -m1 -i 'masscan version') |" ;;
            traceroute) echo "| traceroute | $(ver traceroute -V) |" ;;
            nft) echo "| nftables | $(ver nft --version) |" ;;
            sshd) echo "| OpenSSH | $(ver /usr/sbin/sshd -V) |" ;;
            sshpass) echo "| sshpass | $(ver sshpass -V) |" ;;
            curl) echo "| curl | $(ver curl --version) |" ;;
            swaks) echo "| swaks | $(swaks --version 2>&1 | grep -m1 -i 'version') |" ;;
            socat) echo "| socat | $(socat -V 2>&1 | grep -m1 'socat version') |" ;;
            ncat) echo "| ncat | $(ver ncat --version) |" ;;
            openssl) echo "| openssl | $(ver openssl version) |" ;;
            dig) echo "| dig | $(ver dig -v) |" ;;
            ping) echo "| ping | $(ver ping -V) |" ;;
            python3) echo "| python3 | $(ver "$PY" --version) |" ;;
            pyftpdlib) echo "| pyftpdlib | $("$PY" -c 'import pyftpdlib; print(pyftpdlib.__ver__)' 2>&1) |" ;;
            tshark) echo "| tshark/capinfos | $(ver tshark -v) |" ;;
        esac
    done
}
# lab_scenario_sections: the files table, one section per scenario (what it
# shows, its ground truth, its commands) and the setup commands.
lab_scenario_sections() {
    local s f n d
    printf '\n| file | packets | bytes | duration (s) |\n| --- | ---: | ---: | ---: |\n'
    for s in "${ORDER[@]}"; do
        f=$OUT/$s.pcap
        n=$(capinfos -M -c -T -r "$f" | awk -F'\t' 'NR==1{print $2}')
        d=$(capinfos -M -u -T -r "$f" | awk -F'\t' 'NR==1{printf "%.3f", $2}')
        printf '| %s.pcap | %s | %s | %s |\n' "$s" "$n" "$(stat -c %s "$f")" "$d"
    done
    for s in "${ORDER[@]}"; do
        printf '\n### %s.pcap\n\n%s\n\nGround truth:\n\n' "$s" "$(cat "$WORK/desc/$s")"
        awk -F'\t' -v f="$s.pcap" '$1==f {printf "- `%s` %s -> %s: %s\n", $2, $3, $4, $5}' "$GT"
        printf '\nCommands (`NS#` = run via `ip netns exec NS`; `&` = background service, stopped after the capture):\n\n```\n'
        cat "$WORK/cmds/$s"
        printf '```\n'
    done
    printf '\n## Setup commands\n\n```\n'
    cat "$WORK/cmds/setup"
    printf '```\n'
}
