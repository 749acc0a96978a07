//! `failover-controller`: the site controller daemon. See the crate docs.

fn main() -> std::process::ExitCode {
    failover_controller::daemon::cli_main(failover_controller::daemon::Kind::Site)
}
