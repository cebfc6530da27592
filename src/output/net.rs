//! Network sinks: syslog (RFC 5424 over UDP, TCP with octet-counted
//! framing per RFC 6587, or the local socket), Unix datagram and stream
//! sockets, and Redis (a list with LPUSH/RPUSH, or a channel with PUBLISH,
//! pipelined in batches).
//!
//! Each runs on its own thread behind a queue bounded in events. While the
//! peer is away the thread reconnects with exponential backoff (100 ms to
//! 5 s) and the queue fills; at the bound the output thread either waits
//! (`block`) or drops and counts (`drop`). At exit the thread gets
//! `flush_timeout` to deliver what is queued; what it could not is counted
//! as lost and reported.

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::eve::EveBatch;
use super::sink::{Filter, Policy, SinkCounters, SinkReport};

/// A connection that delivers lines.
pub trait Conn: Send {
    fn connect(&mut self) -> io::Result<()>;
    fn is_connected(&self) -> bool;
    /// Delivers `lines`; on error returns how many were delivered first.
    fn send(&mut self, lines: &[&[u8]]) -> Result<(), (usize, io::Error)>;
    fn disconnect(&mut self);
}

/// Syslog transports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyslogTransport {
    Udp(String),
    Tcp(String),
    Unix(String),
}

impl std::fmt::Display for SyslogTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyslogTransport::Udp(a) => write!(f, "udp://{a}"),
            SyslogTransport::Tcp(a) => write!(f, "tcp://{a}"),
            SyslogTransport::Unix(p) => write!(f, "unix://{p}"),
        }
    }
}

/// Syslog settings.
#[derive(Clone, Debug)]
pub struct SyslogSettings {
    pub transport: SyslogTransport,
    pub facility: u8,
    pub severity: u8,
    pub app_name: String,
    pub hostname: String,
}

pub fn facility_code(name: &str) -> Option<u8> {
    let names = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7",
    ];
    names.iter().position(|n| *n == name).map(|p| p as u8)
}

pub fn severity_code(name: &str) -> Option<u8> {
    let names = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    names.iter().position(|n| *n == name).map(|p| p as u8)
}

enum SyslogSock {
    None,
    Udp(UdpSocket),
    Tcp(TcpStream),
    Unix(UnixDatagram),
}

pub struct SyslogConn {
    s: SyslogSettings,
    sock: SyslogSock,
    msg: Vec<u8>,
}

impl SyslogConn {
    pub fn new(s: SyslogSettings) -> Self {
        SyslogConn {
            s,
            sock: SyslogSock::None,
            msg: Vec::new(),
        }
    }

    /// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG` (RFC 5424, section 6).
    fn format(&mut self, line: &[u8]) {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        // The EVE event type is the MSGID.
        let msgid = event_type_of(body).unwrap_or("-");
        let now = time::OffsetDateTime::now_utc();
        let pri = u16::from(self.s.facility) * 8 + u16::from(self.s.severity);
        self.msg.clear();
        let _ = write!(
            self.msg,
            "<{pri}>1 {:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z {} {} {} {msgid} - ",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.microsecond(),
            self.s.hostname,
            self.s.app_name,
            std::process::id(),
        );
        self.msg.extend_from_slice(body);
    }
}

/// The `event_type` of an EVE line, read without parsing the whole line.
fn event_type_of(line: &[u8]) -> Option<&'static str> {
    let key = b"\"event_type\":\"";
    let at = line.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = line.get(at..)?;
    ["alert", "flow", "anomaly", "stats"]
        .into_iter()
        .find(|t| rest.starts_with(t.as_bytes()) && rest.get(t.len()) == Some(&b'"'))
}

impl Conn for SyslogConn {
    fn connect(&mut self) -> io::Result<()> {
        self.sock = match &self.s.transport {
            SyslogTransport::Udp(a) => {
                let addr = a
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| io::Error::other("no address"))?;
                let bind = if addr.is_ipv6() {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let s = UdpSocket::bind(bind)?;
                s.connect(addr)?;
                SyslogSock::Udp(s)
            }
            SyslogTransport::Tcp(a) => {
                let addr = a
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| io::Error::other("no address"))?;
                let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
                s.set_write_timeout(Some(Duration::from_secs(5)))?;
                SyslogSock::Tcp(s)
            }
            SyslogTransport::Unix(p) => {
                let s = UnixDatagram::unbound()?;
                s.connect(p)?;
                SyslogSock::Unix(s)
            }
        };
        Ok(())
    }
    fn is_connected(&self) -> bool {
        !matches!(self.sock, SyslogSock::None)
    }
    fn send(&mut self, lines: &[&[u8]]) -> Result<(), (usize, io::Error)> {
        for (i, line) in lines.iter().enumerate() {
            self.format(line);
            let r = match &mut self.sock {
                SyslogSock::None => Err(io::Error::from(io::ErrorKind::NotConnected)),
                SyslogSock::Udp(s) => s.send(&self.msg).map(|_| ()),
                SyslogSock::Unix(s) => s.send(&self.msg).map(|_| ()),
                SyslogSock::Tcp(s) => {
                    // Octet counting (RFC 6587, section 3.4.1).
                    let head = format!("{} ", self.msg.len());
                    s.write_all(head.as_bytes())
                        .and_then(|()| s.write_all(&self.msg))
                }
            };
            r.map_err(|e| (i, e))?;
        }
        Ok(())
    }
    fn disconnect(&mut self) {
        self.sock = SyslogSock::None;
    }
}

/// Unix socket sink: one datagram per event, or newline-delimited on a stream.
pub struct UnixConn {
    path: String,
    stream: bool,
    dgram: Option<UnixDatagram>,
    conn: Option<UnixStream>,
}

impl UnixConn {
    pub fn new(path: String, stream: bool) -> Self {
        UnixConn {
            path,
            stream,
            dgram: None,
            conn: None,
        }
    }
}

impl Conn for UnixConn {
    fn connect(&mut self) -> io::Result<()> {
        if self.stream {
            let s = UnixStream::connect(&self.path)?;
            s.set_write_timeout(Some(Duration::from_secs(5)))?;
            self.conn = Some(s);
        } else {
            let s = UnixDatagram::unbound()?;
            s.connect(&self.path)?;
            self.dgram = Some(s);
        }
        Ok(())
    }
    fn is_connected(&self) -> bool {
        self.conn.is_some() || self.dgram.is_some()
    }
    fn send(&mut self, lines: &[&[u8]]) -> Result<(), (usize, io::Error)> {
        for (i, line) in lines.iter().enumerate() {
            let r = match (&mut self.conn, &self.dgram) {
                (Some(s), _) => s.write_all(line),
                (None, Some(d)) => d.send(line.strip_suffix(b"\n").unwrap_or(line)).map(|_| ()),
                _ => Err(io::Error::from(io::ErrorKind::NotConnected)),
            };
            r.map_err(|e| (i, e))?;
        }
        Ok(())
    }
    fn disconnect(&mut self) {
        self.conn = None;
        self.dgram = None;
    }
}

/// How events reach Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisMode {
    Lpush,
    Rpush,
    Publish,
}

pub struct RedisConn {
    url: String,
    mode: RedisMode,
    key: String,
    batch: usize,
    con: Option<redis::Connection>,
}

impl RedisConn {
    pub fn new(url: String, mode: RedisMode, key: String, batch: usize) -> Self {
        RedisConn {
            url,
            mode,
            key,
            batch: batch.max(1),
            con: None,
        }
    }
}

impl Conn for RedisConn {
    fn connect(&mut self) -> io::Result<()> {
        let client = redis::Client::open(self.url.as_str()).map_err(io::Error::other)?;
        let con = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .map_err(io::Error::other)?;
        con.set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(io::Error::other)?;
        con.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(io::Error::other)?;
        self.con = Some(con);
        Ok(())
    }
    fn is_connected(&self) -> bool {
        self.con.is_some()
    }
    fn send(&mut self, lines: &[&[u8]]) -> Result<(), (usize, io::Error)> {
        let con = self
            .con
            .as_mut()
            .ok_or((0, io::Error::from(io::ErrorKind::NotConnected)))?;
        let mut done = 0;
        for chunk in lines.chunks(self.batch) {
            let mut pipe = redis::pipe();
            let strip = |l: &&[u8]| l.strip_suffix(b"\n").unwrap_or(l).to_vec();
            match self.mode {
                RedisMode::Lpush | RedisMode::Rpush => {
                    let cmd = if self.mode == RedisMode::Lpush {
                        "LPUSH"
                    } else {
                        "RPUSH"
                    };
                    let c = pipe.cmd(cmd).arg(&self.key);
                    for l in chunk {
                        c.arg(strip(l));
                    }
                    c.ignore();
                }
                RedisMode::Publish => {
                    for l in chunk {
                        pipe.cmd("PUBLISH").arg(&self.key).arg(strip(l)).ignore();
                    }
                }
            }
            pipe.query::<()>(con)
                .map_err(|e| (done, io::Error::other(e)))?;
            done += chunk.len();
        }
        Ok(())
    }
    fn disconnect(&mut self) {
        self.con = None;
    }
}

/// A network sink: its queue and thread.
pub struct Queued {
    pub name: String,
    pub filter: Filter,
    policy: Policy,
    cap: usize,
    pending: Arc<AtomicUsize>,
    tx: Option<Sender<Arc<EveBatch>>>,
    counters: Arc<SinkCounters>,
    shutting_down: Arc<AtomicBool>,
    deadline: Arc<Mutex<Option<Instant>>>,
    done: Receiver<()>,
    flush_timeout: Duration,
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Queued {
    pub fn start(
        name: String,
        filter: Filter,
        policy: Policy,
        cap: usize,
        flush_timeout: Duration,
        mut conn: Box<dyn Conn>,
    ) -> Queued {
        let (tx, rx) = unbounded::<Arc<EveBatch>>();
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let pending = Arc::new(AtomicUsize::new(0));
        let counters = Arc::new(SinkCounters::default());
        let shutting_down = Arc::new(AtomicBool::new(false));
        let deadline: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
        let (p, c, sd, dl, f, n) = (
            pending.clone(),
            counters.clone(),
            shutting_down.clone(),
            deadline.clone(),
            filter.clone(),
            name.clone(),
        );
        let spawned = thread::Builder::new().name(format!("sink-{name}")).spawn(move || {
            let past_deadline = || dl.lock().ok().and_then(|d| *d).is_some_and(|d| Instant::now() >= d);
            let mut backoff = BACKOFF_MIN;
            let mut was_down = false;
            let mut warned = false;
            for batch in rx {
                let lines: Vec<&[u8]> = batch.iter().filter(|(t, _)| f.accepts(*t)).map(|(_, l)| l).collect();
                let mut at = 0;
                while at < lines.len() {
                    if !conn.is_connected() {
                        match conn.connect() {
                            Ok(()) => {
                                backoff = BACKOFF_MIN;
                                if was_down {
                                    SinkCounters::add(&c.reconnects, 1);
                                    tracing::warn!(sink = %n, "output reconnected");
                                    was_down = false;
                                    warned = false;
                                }
                            }
                            Err(e) => {
                                SinkCounters::add(&c.connect_failures, 1);
                                was_down = true;
                                if !warned {
                                    warned = true;
                                    tracing::warn!(sink = %n, error = %e, "output unreachable; retrying with backoff");
                                }
                                if sd.load(Ordering::Relaxed) && past_deadline() {
                                    break;
                                }
                                // Sleep in short steps so shutdown is noticed.
                                let until = Instant::now() + backoff;
                                while Instant::now() < until && !(sd.load(Ordering::Relaxed) && past_deadline()) {
                                    thread::sleep(Duration::from_millis(20));
                                }
                                backoff = (backoff * 2).min(BACKOFF_MAX);
                                continue;
                            }
                        }
                    }
                    match conn.send(lines.get(at..).unwrap_or(&[])) {
                        Ok(()) => {
                            SinkCounters::add(&c.written, (lines.len() - at) as u64);
                            at = lines.len();
                        }
                        Err((k, e)) => {
                            SinkCounters::add(&c.written, k as u64);
                            SinkCounters::add(&c.write_errors, 1);
                            at += k;
                            conn.disconnect();
                            was_down = true;
                            if !warned {
                                warned = true;
                                tracing::warn!(sink = %n, error = %e, "output write failed; reconnecting");
                            }
                        }
                    }
                }
                if at < lines.len() {
                    SinkCounters::add(&c.lost_at_exit, (lines.len() - at) as u64);
                }
                p.fetch_sub(lines.len(), Ordering::Relaxed);
            }
            let _ = done_tx.send(());
        });
        if let Err(e) = spawned {
            tracing::warn!(sink = %name, error = %e, "cannot start output thread");
        }
        Queued {
            name,
            filter,
            policy,
            cap: cap.max(1),
            pending,
            tx: Some(tx),
            counters,
            shutting_down,
            deadline,
            done,
            flush_timeout,
        }
    }

    /// Queues a batch (the events this sink takes from it).
    pub fn enqueue(&self, batch: &Arc<EveBatch>) {
        let n = batch
            .iter()
            .filter(|(t, _)| self.filter.accepts(*t))
            .count();
        if n == 0 {
            return;
        }
        let Some(tx) = &self.tx else { return };
        loop {
            let now = self.pending.load(Ordering::Relaxed);
            if now == 0 || now + n <= self.cap {
                break;
            }
            if self.policy == Policy::Drop {
                SinkCounters::add(&self.counters.dropped, n as u64);
                return;
            }
            thread::sleep(Duration::from_millis(1));
        }
        self.pending.fetch_add(n, Ordering::Relaxed);
        if tx.send(batch.clone()).is_err() {
            self.pending.fetch_sub(n, Ordering::Relaxed);
            SinkCounters::add(&self.counters.dropped, n as u64);
        }
    }

    /// Closes the queue and gives the thread `flush_timeout` to deliver.
    pub fn finish(&mut self) -> SinkReport {
        if let Ok(mut d) = self.deadline.lock() {
            *d = Some(Instant::now() + self.flush_timeout);
        }
        self.shutting_down.store(true, Ordering::Relaxed);
        self.tx = None;
        if self
            .done
            .recv_timeout(self.flush_timeout + Duration::from_secs(1))
            .is_err()
        {
            let left = self.pending.load(Ordering::Relaxed) as u64;
            SinkCounters::add(&self.counters.lost_at_exit, left);
        }
        let r = self.counters.report(&self.name);
        if r.lost_at_exit > 0 {
            tracing::warn!(sink = %self.name, lost = r.lost_at_exit, "output could not deliver everything before exit");
        }
        r
    }

    pub fn report(&self) -> SinkReport {
        self.counters.report(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_message_is_rfc5424() {
        let mut c = SyslogConn::new(SyslogSettings {
            transport: SyslogTransport::Udp("127.0.0.1:9".into()),
            facility: facility_code("local5").unwrap_or(0),
            severity: severity_code("notice").unwrap_or(0),
            app_name: "backflow".into(),
            hostname: "sensor-a".into(),
        });
        c.format(b"{\"timestamp\":\"x\",\"event_type\":\"alert\",\"a\":1}\n");
        let m = String::from_utf8_lossy(&c.msg).to_string();
        // local5 (21) * 8 + notice (5) = 173
        assert!(m.starts_with("<173>1 "), "{m}");
        let parts: Vec<&str> = m.splitn(8, ' ').collect();
        assert_eq!(parts[2], "sensor-a");
        assert_eq!(parts[3], "backflow");
        assert_eq!(parts[5], "alert");
        assert_eq!(parts[6], "-");
        assert_eq!(
            parts[7],
            "{\"timestamp\":\"x\",\"event_type\":\"alert\",\"a\":1}"
        );
    }

    #[test]
    fn event_type_is_read_from_the_line() {
        assert_eq!(
            event_type_of(b"{\"timestamp\":\"t\",\"event_type\":\"flow\",\"x\":1}"),
            Some("flow")
        );
        assert_eq!(event_type_of(b"{\"event_type\":\"flows\"}"), None);
        assert_eq!(event_type_of(b"garbage"), None);
    }
}
