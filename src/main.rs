//! The `backflow` command: flags in, engine run, summary and exit code out.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use backflow::config::Config;
use backflow::pipeline::{OutputTarget, ReadOptions, RunReport, Signals, run_read};

#[derive(Parser)]
#[command(
    name = "backflow",
    version,
    about = "Passive network sensor for traffic that flows the wrong way"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level (error, warn, info, debug); overrides RUST_LOG.
    #[arg(long, global = true)]
    log: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Read pcap/pcapng files (or `-` for standard input) and write EVE JSON.
    Read {
        /// Capture files; `-` reads standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Config file (TOML); built-in defaults when absent.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Output directory (eve.json, stats.json), or `-` for EVE on stdout.
        #[arg(short = 'o', long = "output", default_value = ".")]
        output: PathBuf,
        /// Worker threads (default: config `workers`, else one per core).
        #[arg(long)]
        workers: Option<usize>,
        /// No progress bar and no summary on stderr.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a deterministic benchmark capture (classic pcap, Ethernet).
    GenPcap {
        /// mixed (TCP sessions with data, DNS), synflood (60-byte spoofed SYNs),
        /// scan, churn (short connections over four days of packet time),
        /// handshakes (`--concurrent` connections opened and never closed:
        /// 3 packets each).
        #[arg(long, default_value = "mixed")]
        kind: String,
        /// Packets to write (suffixes k and M accepted: 1M, 500k).
        #[arg(long, default_value = "1M")]
        packets: String,
        /// Connections open at once (mixed, scan, handshakes); clients (churn).
        #[arg(long, default_value_t = 10_000)]
        concurrent: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file (`-` for stdout).
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// Signature rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Capture from network interfaces (built with `--features live`).
    Live(LiveArgs),
}

#[derive(clap::Args)]
struct LiveArgs {
    /// Interface to capture on; repeat for several.
    #[arg(short = 'i', long = "interface", required = true)]
    interfaces: Vec<String>,
    /// BPF capture filter (tcpdump syntax).
    #[arg(long)]
    bpf: Option<String>,
    /// Bytes kept of each frame.
    #[arg(long, default_value_t = 262_144)]
    snaplen: u32,
    /// Kernel capture buffer per interface (e.g. 64MiB).
    #[arg(long, default_value = "64MiB")]
    buffer_size: String,
    /// Promiscuous mode (the default).
    #[arg(long, overrides_with = "no_promisc")]
    promisc: bool,
    /// Do not put the interfaces in promiscuous mode.
    #[arg(long = "no-promisc")]
    no_promisc: bool,
    /// Worker threads (default: config `workers`, else one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Config file (TOML); built-in defaults when absent.
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Output directory (eve.json, stats.json), or `-` for EVE on stdout.
    #[arg(short = 'o', long = "output", default_value = ".")]
    output: PathBuf,
    /// Drop root to this user once the captures and outputs are open.
    #[arg(long)]
    user: Option<String>,
    /// No summary on stderr at exit.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Load rules and report what loaded, what was rejected and why; exit
    /// status 0 when every rule loaded, 1 otherwise.
    Check {
        /// Rule files, directories (their `*.rules`) or file-name wildcards
        /// (default: the config's `rules.files`).
        paths: Vec<PathBuf>,
        /// Config file: variables, home networks, classification and
        /// threshold files.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Print the counts only, not every error.
        #[arg(short, long)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // Help and version are not errors; usage errors exit 1.
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let filter = cli
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "warn".into());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "warn".into()),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("backflow: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Read {
            files,
            config,
            output,
            workers,
            quiet,
        } => {
            let config = load_config(config.as_ref())?;
            let workers = worker_count(workers, &config)?;
            let output = output_target(output);
            let signals = Signals::install().context("cannot install signal handlers")?;
            let report = run_read(ReadOptions {
                inputs: files,
                config,
                output,
                workers,
                progress: !quiet,
                signals,
            })
            .context("cannot start")?;
            if report.interrupted {
                eprintln!(
                    "backflow: interrupted; everything read so far was processed and written"
                );
            }
            if !quiet {
                print_summary(&report);
            }
            Ok(if report.input_errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::GenPcap {
            kind,
            packets,
            concurrent,
            seed,
            output,
        } => {
            use backflow::traffic::{GenOptions, Kind, generate};
            let kind = match kind.as_str() {
                "mixed" => Kind::Mixed,
                "synflood" => Kind::SynFlood,
                "scan" => Kind::Scan,
                "churn" => Kind::Churn,
                "handshakes" => Kind::Handshakes,
                other => {
                    anyhow::bail!(
                        "--kind {other}: expected mixed, synflood, scan, churn or handshakes"
                    )
                }
            };
            let packets = parse_count(&packets).with_context(|| format!("--packets {packets}"))?;
            let opts = GenOptions {
                kind,
                packets,
                concurrent,
                seed,
            };
            let n = if output.as_os_str() == "-" {
                generate(std::io::BufWriter::new(std::io::stdout().lock()), &opts)?
            } else {
                let f = std::fs::File::create(&output)
                    .with_context(|| format!("{}", output.display()))?;
                generate(std::io::BufWriter::with_capacity(1 << 20, f), &opts)?
            };
            eprintln!("backflow: wrote {n} packets");
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules {
            command:
                RulesCommand::Check {
                    paths,
                    config,
                    quiet,
                },
        } => {
            let config = load_config(config.as_ref())?;
            Ok(rules_check(&config, &paths, quiet))
        }
        Command::Live(args) => run_live(args),
    }
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    })
}

fn worker_count(flag: Option<usize>, config: &Config) -> anyhow::Result<usize> {
    let n = flag
        .or((config.workers > 0).then_some(config.workers))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if n == 0 {
        anyhow::bail!("--workers must be at least 1");
    }
    Ok(n)
}

fn output_target(output: PathBuf) -> OutputTarget {
    if output.as_os_str() == "-" {
        OutputTarget::Stdout
    } else {
        OutputTarget::Dir(output)
    }
}

#[cfg(not(feature = "live"))]
fn run_live(_: LiveArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "live capture is not built in: rebuild with `cargo build --release --features live` \
         (needs libpcap: apt-get install libpcap-dev)"
    )
}

#[cfg(feature = "live")]
fn run_live(args: LiveArgs) -> anyhow::Result<ExitCode> {
    use backflow::capture::live::LiveOptions;
    use backflow::config::Size;
    use backflow::pipeline::live::{LiveRunOptions, buffer_bytes, dedup_interfaces, run_live};
    let config = load_config(args.config.as_ref())?;
    let workers = worker_count(args.workers, &config)?;
    let buffer = Size::parse(&args.buffer_size)
        .map_err(|e| anyhow::anyhow!("--buffer-size {}: {e}", args.buffer_size))?;
    let capture = LiveOptions {
        snaplen: i32::try_from(args.snaplen.max(64)).unwrap_or(i32::MAX),
        buffer_size: buffer_bytes(buffer.0),
        promisc: !args.no_promisc,
        bpf: args.bpf,
        ..LiveOptions::default()
    };
    let signals = Signals::install().context("cannot install signal handlers")?;
    let report = run_live(LiveRunOptions {
        interfaces: dedup_interfaces(args.interfaces),
        capture,
        config,
        output: output_target(args.output),
        workers,
        signals,
        user: args.user,
    })?;
    if !args.quiet {
        print_summary(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// `backflow rules check`: errors, then counts per file and per reason.
fn rules_check(config: &Config, paths: &[PathBuf], quiet: bool) -> ExitCode {
    use backflow::detect::rules::RuleSet;
    use std::fmt::Write as _;
    let files = (!paths.is_empty()).then_some(paths);
    let set = RuleSet::load_with(
        &config.rules,
        files,
        &config.policy.home_nets,
        config.detect.max_tracked,
    );
    let r = set.report();
    let mut out = String::new();
    if !quiet {
        for e in &r.errors {
            let _ = writeln!(out, "{e}");
        }
    }
    for e in &r.other_errors {
        let _ = writeln!(out, "{e}");
    }
    let share = |n: usize, of: usize| {
        if of == 0 {
            100.0
        } else {
            n as f64 * 100.0 / of as f64
        }
    };
    let _ = writeln!(out, "files:");
    for f in &r.files {
        let _ = writeln!(
            out,
            "  {}: {} of {} rules loaded ({:.1}%)",
            f.path,
            f.loaded,
            f.rules,
            share(f.loaded, f.rules)
        );
    }
    let _ = writeln!(
        out,
        "loaded: {} rules ({} IP-only) and {} detector entries; rejected: {} of {} ({:.1}% loaded)",
        r.loaded,
        r.ip_only,
        r.detector_rules,
        r.rejected(),
        r.rules(),
        share(r.rules() - r.rejected(), r.rules())
    );
    if r.rejected() > 0 {
        let _ = writeln!(out, "rejected by reason:");
        for (reason, n) in r.by_reason() {
            let _ = writeln!(out, "  {n:>7}  {reason}");
        }
    }
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
    if r.all_loaded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn parse_count(s: &str) -> anyhow::Result<u64> {
    let (num, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1_000),
        Some('M' | 'm') => (&s[..s.len() - 1], 1_000_000),
        _ => (s, 1),
    };
    Ok(num.parse::<u64>()?.saturating_mul(mult))
}

fn print_summary(r: &RunReport) {
    let c = &r.snapshot.counters;
    let secs = r.wall.as_secs_f64().max(1e-9);
    let alerts = if c.alerts.is_empty() {
        "none".to_string()
    } else {
        c.alerts
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    eprintln!(
        "backflow: {} packets, {} bytes, {} flows, {} decode events, alerts: {}",
        c.pkts,
        c.bytes,
        c.flows_created(),
        c.decode_events(),
        alerts
    );
    eprintln!(
        "backflow: {:.3} s wall, {:.0} packets/s, {} workers, {} input errors",
        secs,
        c.pkts as f64 / secs,
        r.workers,
        r.input_errors.len()
    );
    if r.snapshot.process.peak_rss_bytes > 0 {
        eprintln!(
            "backflow: peak memory {} MiB (memory_cap {} MiB)",
            r.snapshot.process.peak_rss_bytes >> 20,
            r.memory_cap >> 20
        );
    }
    let rs = &c.rules;
    if rs.loaded > 0 || rs.rejected > 0 || rs.reputation_entries > 0 {
        eprintln!(
            "backflow: rules {} loaded, {} rejected, {} matches, {} suppressed, {} thresholded; reputation {} entries, {} lookups, {} hits",
            rs.loaded,
            rs.rejected,
            rs.matches,
            rs.suppressed,
            rs.thresholded,
            rs.reputation_entries,
            rs.reputation_lookups,
            rs.reputation_hits
        );
    } else {
        eprintln!("backflow: rules none loaded: signature matching was off (`rules.files`)");
    }
    let full = |what: &str, n: fn(&backflow::detect::Usage) -> u64| {
        let counts: Vec<String> = c
            .trackers
            .iter()
            .filter(|(_, u)| n(u) > 0)
            .map(|(k, u)| format!("{k}={}", n(u)))
            .collect();
        if !counts.is_empty() {
            eprintln!(
                "backflow: trackers full, {what}: {} (memory_cap bounds them)",
                counts.join(" ")
            );
        }
    };
    full("keys not tracked", |u| u.shed);
    full("entries dropped before their idle time", |u| u.evicted);
    let lat = &c.latency;
    let stage = |name: &str, l: &backflow::stats::StageLatency| {
        let (p50, p99, p999, _) = l.percentiles();
        (l.count() > 0).then(|| format!("{name} {p50}/{p99}/{p999}"))
    };
    let stages: Vec<String> = [
        stage("capture", &lat.capture),
        stage("queue", &lat.queue),
        stage("worker", &lat.worker),
        stage("output", &lat.output),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !stages.is_empty() {
        eprintln!("backflow: latency p50/p99/p99.9 us: {}", stages.join(", "));
    }
    for i in &r.snapshot.source.interfaces {
        eprintln!(
            "backflow: interface {}: {} packets, {} bytes, kernel {} seen {} dropped {} if-dropped, {} queue drops, {} errors, {} reopens",
            i.name,
            i.packets,
            i.bytes,
            i.kernel_packets,
            i.kernel_drops,
            i.kernel_ifdrops,
            i.queue_drops,
            i.errors,
            i.reopens
        );
    }
    for s in &r.sinks {
        if s.dropped > 0 || s.write_errors > 0 || s.lost_at_exit > 0 || s.reconnects > 0 {
            eprintln!(
                "backflow: output {}: {} written, {} dropped, {} lost at exit, {} write errors, {} reconnects",
                s.name, s.written, s.dropped, s.lost_at_exit, s.write_errors, s.reconnects
            );
        }
    }
}
