//! Unmapping the start-up code once the daemon has started: a daemon that
//! has started holds most of its binary and libraries mapped, because
//! start-up runs code from all over them, though at idle it runs a small
//! part (see `failover_code_pages`). It must never stop or slow the daemon:
//! it runs once, on a blocking thread, and failing costs only memory.

use std::time::Duration;

use failover_code_pages::{StartUpMappings, TrimError};

/// Unmaps the start-up code [`TRIM_CODE_AFTER`] from now, and logs what it
/// did.
pub fn spawn(start_up: Result<StartUpMappings, TrimError>) {
    tokio::spawn(trim(start_up));
}

/// How long after start the daemon unmaps its code: by then it has run its
/// start-up code, which it does not need again, and its first heartbeats,
/// which it keeps running.
const TRIM_CODE_AFTER: Duration = Duration::from_secs(5);

/// Unmaps the code of the binary and its libraries once the daemon has
/// started, so that only the code it keeps running is mapped again
/// (start-up runs code from all over them, and the kernel maps 64 KiB
/// around every page run). Failing costs only memory.
async fn trim(start_up: Result<StartUpMappings, TrimError>) {
    tokio::time::sleep(TRIM_CODE_AFTER).await;
    let trimmed = tokio::task::spawn_blocking(move || start_up?.trim()).await;
    match trimmed {
        Ok(Ok(t)) => tracing::info!(
            mappings = t.mappings,
            resident_kib_before = t.resident_kib_before,
            resident_kib_after = t.resident_kib_after,
            "start-up code unmapped; the code that still runs is mapped again as it runs"
        ),
        Ok(Err(e)) => tracing::warn!(
            error = %crate::describe::with_causes(&e),
            "could not unmap the start-up code; the code stays mapped as the kernel mapped it"
        ),
        Err(e) => tracing::warn!(error = %e, "unmapping the start-up code did not finish"),
    }
}
