//! `failover-controller`: the site controller daemon. See the crate docs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use failover_controller::daemon::{self, Kind};

#[derive(Parser)]
#[command(name = "failover-controller", version, about = "Site controller of the failover cluster")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the controller.
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
        Cmd::CheckConfig { config } => daemon::load(&config, Kind::Site).map(|l| {
            println!("{}: ok ({} as site)", config.display(), l.my_member().name);
        }),
        Cmd::Run { config } => daemon::load(&config, Kind::Site).and_then(|loaded| {
            daemon::init_logging(&loaded.settings.node.log_format);
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(daemon::run(loaded))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("failover-controller: {e:#}");
            ExitCode::FAILURE
        }
    }
}
