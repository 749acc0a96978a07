//! `trim` on a running process: this test binary's own code.

#[test]
fn trimming_unmaps_the_executables_pages_and_the_process_runs_on() {
    let trimmed = failover_code_pages::trim().expect("trimming this test's own executable");
    assert!(trimmed.mappings >= 2, "the code and the read-only data are unmapped: {trimmed:?}");
    assert!(
        trimmed.resident_kib_after < trimmed.resident_kib_before,
        "fewer of the executable's pages are resident after: {trimmed:?}"
    );
    // Code not run since is mapped again as it runs: formatting,
    // collections, and trimming again all still work.
    let words: std::collections::BTreeSet<String> = (0..1000).map(|i| format!("{i:x}")).collect();
    assert_eq!(words.len(), 1000);
    let again = failover_code_pages::trim().expect("trimming a second time");
    assert_eq!(again.mappings, trimmed.mappings);
}
