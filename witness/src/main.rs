//! `failover-witness`: the neutral third vote. It runs `failover-core` as a
//! voter that can never become active, through the same runtime as the site
//! controller. It must never touch traffic, run hooks, health checks or
//! actuators: its configuration is refused if it names any.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use failover_controller::daemon::{self, Kind};

#[derive(Parser)]
#[command(name = "failover-witness", version, about = "Witness (voter only) of the failover cluster")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the witness.
    Run {
        /// Configuration file (TOML); FAILOVER_* variables override it.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file and exit.
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::CheckConfig { config } => daemon::load(&config, Kind::Witness).map(|l| {
            println!("{}: ok ({} as witness)", config.display(), l.my_member().name);
        }),
        Cmd::Run { config } => daemon::load(&config, Kind::Witness).and_then(|loaded| {
            daemon::init_logging(&loaded.settings.node.log_format);
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(daemon::run(loaded))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("failover-witness: {e:#}");
            ExitCode::FAILURE
        }
    }
}
