//! `failover-witness`: the neutral third vote. It runs `failover-core` as a
//! voter that can never become active, through the same runtime as the site
//! controller. It must never touch traffic, run hooks, health checks or
//! actuators: its configuration is refused if it names any. It runs on one
//! tokio worker thread (see `daemon::cli_main`): voting and answering status
//! need no more, and each further thread costs memory on a small VM.

fn main() -> std::process::ExitCode {
    failover_controller::daemon::cli_main(failover_controller::daemon::Kind::Witness)
}
