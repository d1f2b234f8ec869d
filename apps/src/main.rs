//! `ferroplane`: run, validate and inspect ferroplane data planes.
//!
//! With no arguments it runs the built-in demo (`configs/default.toml`): two null ports
//! forwarded by l2fwd in macswap mode on one lcore for five seconds, printing Mpps per second and
//! a final report. It needs no NIC and no root.

mod pktgen;
mod report;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ferroplane::config;

#[derive(Parser)]
#[command(
    name = "ferroplane",
    version,
    about = "Kernel-bypass style packet processing"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config, then run it until SIGINT/SIGTERM or its `run.duration`.
    Run {
        /// Config file (default: the built-in demo config).
        file: Option<PathBuf>,
        /// Stop after this long ("5s", "500ms", "2m"), overriding `run.duration`.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Write the final statistics as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Do not print the per-interval stats line.
        #[arg(long)]
        quiet: bool,
        /// Trace the next N packets through the graph and print the trace at the end
        /// (graph apps: l3fwd, udp-echo).
        #[arg(long, value_name = "N")]
        trace: Option<u32>,
        /// Also write the trace as a Mermaid sequence diagram to this file.
        #[arg(long, value_name = "FILE", requires = "trace")]
        trace_mermaid: Option<PathBuf>,
    },
    /// Check a config file and report every error with its path and a hint.
    Validate {
        /// Config file.
        file: PathBuf,
    },
    /// Generate traffic and measure what comes back (rates, loss, reordering, latency), from a
    /// config with `[app] name = "pktgen"` or quick flags; or search RFC 2544 throughput.
    Pktgen(Box<pktgen::PktgenArgs>),
    /// Print the effective config (defaults filled in, tx queues resolved).
    ShowConfig {
        /// Config file (default: the built-in demo config).
        file: Option<PathBuf>,
    },
}

/// Parses "5s", "500ms", "2m", "1h" or a plain number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 5s, 500ms, 2m"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit {unit:?} in {s:?}: use ms, s, m or h"
            ))
        }
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn load(file: Option<&PathBuf>) -> Result<config::Config, config::ConfigErrors> {
    match file {
        Some(f) => config::load(f),
        None => config::parse(config::DEFAULT_CONFIG),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run {
        file: None,
        duration: None,
        json: None,
        quiet: false,
        trace: None,
        trace_mermaid: None,
    }) {
        Command::Pktgen(args) => match pktgen::main(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!(
                    "{}",
                    if e.starts_with("error") || e.contains("\nerror") {
                        e
                    } else {
                        format!("error: {e}")
                    }
                );
                ExitCode::from(2)
            }
        },
        Command::Validate { file } => match config::load(&file) {
            Ok(cfg) => {
                println!(
                    "{}: valid ({} pools, {} ports, {} lcores)",
                    file.display(),
                    cfg.memory.pools.len(),
                    cfg.ports.len(),
                    cfg.lcores.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {} error(s)\n{e}", file.display(), e.0.len());
                ExitCode::from(2)
            }
        },
        Command::ShowConfig { file } => match load(file.as_ref()) {
            Ok(cfg) => match toml::to_string_pretty(&cfg) {
                Ok(s) => {
                    print!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cannot print config: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Run {
            file,
            duration,
            json,
            quiet,
            trace,
            trace_mermaid,
        } => {
            let cfg = match load(file.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    let name = file
                        .as_ref()
                        .map_or("built-in config".to_string(), |f| f.display().to_string());
                    eprintln!("{name}: {} error(s)\n{e}", e.0.len());
                    return ExitCode::from(2);
                }
            };
            let opts = run::Options {
                duration: duration.or(cfg.run.duration),
                json,
                quiet,
                trace,
                trace_mermaid,
            };
            match run::run(&cfg, &opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("5x").unwrap_err().contains("unit"));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
