//! Trimming a running process: this test binary's own code and libraries.

use failover_code_pages::StartUpMappings;

#[test]
fn trimming_unmaps_the_start_up_code_and_the_process_runs_on() {
    let start_up = StartUpMappings::record().expect("reading this test's mappings");
    let trimmed = start_up.trim().expect("trimming this test's own code");
    // The executable's code and read-only data, and at least the C
    // library's and the dynamic loader's code.
    assert!(trimmed.mappings >= 4, "the executable and its libraries are unmapped: {trimmed:?}");
    assert!(
        trimmed.resident_kib_after < trimmed.resident_kib_before,
        "fewer of their pages are resident after: {trimmed:?}"
    );
    // Code not run since is mapped again as it runs: formatting,
    // collections, and trimming again all still work.
    let words: std::collections::BTreeSet<String> = (0..1000).map(|i| format!("{i:x}")).collect();
    assert_eq!(words.len(), 1000);
    let again = start_up.trim().expect("trimming a second time");
    assert_eq!(again.mappings, trimmed.mappings);
}
