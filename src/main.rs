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
        /// mixed (TCP sessions with data, DNS), synflood (60-byte spoofed SYNs), scan.
        #[arg(long, default_value = "mixed")]
        kind: String,
        /// Packets to write (suffixes k and M accepted: 1M, 500k).
        #[arg(long, default_value = "1M")]
        packets: String,
        /// Connections open at once (mixed, scan).
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
    /// Capture from network interfaces (needs the `live` feature).
    Live {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
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
            let config = match &config {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            let workers = workers
                .or((config.workers > 0).then_some(config.workers))
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            if workers == 0 {
                anyhow::bail!("--workers must be at least 1");
            }
            let output = if output.as_os_str() == "-" {
                OutputTarget::Stdout
            } else {
                OutputTarget::Dir(output)
            };
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
                other => anyhow::bail!("--kind {other}: expected mixed, synflood or scan"),
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
            let config = match &config {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            Ok(rules_check(&config, &paths, quiet))
        }
        Command::Live { .. } => {
            anyhow::bail!(
                "live capture is not built in: rebuild with `cargo build --release --features live` \
                 (needs libpcap: apt-get install libpcap-dev)"
            )
        }
    }
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
    for s in &r.sinks {
        if s.dropped > 0 || s.write_errors > 0 || s.lost_at_exit > 0 || s.reconnects > 0 {
            eprintln!(
                "backflow: output {}: {} written, {} dropped, {} lost at exit, {} write errors, {} reconnects",
                s.name, s.written, s.dropped, s.lost_at_exit, s.write_errors, s.reconnects
            );
        }
    }
}
