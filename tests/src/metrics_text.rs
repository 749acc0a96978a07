//! Reading a node's `/metrics` (the Prometheus text format) for the tests
//! and the benchmark: one sample by its exact series, or the sum of a
//! whole family. It only reads text; it never fetches anything.

/// The value of the sample named exactly `series` (name and labels).
pub fn sample(text: &str, series: &str) -> Option<i64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The sum of every sample of `family` (the lines `family{...} v` or
/// `family v`), or `None` if it has none.
pub fn family_sum(text: &str, family: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(family) else { continue };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP failover_role_changes_total x\n\
                        failover_role_changes_total{role=\"active\"} 2\n\
                        failover_role_changes_total{role=\"standby\"} 3\n\
                        failover_role_changes_total_created 99\n\
                        failover_lease_near_misses_total 0\n";

    #[test]
    fn family_sum_adds_every_labelled_sample_of_one_family_only() {
        assert_eq!(family_sum(TEXT, "failover_role_changes_total"), Some(5.0));
        assert_eq!(family_sum(TEXT, "failover_lease_near_misses_total"), Some(0.0));
        assert_eq!(family_sum(TEXT, "failover_lease_renewal_margin_seconds_count"), None);
    }

    #[test]
    fn sample_reads_one_exact_series() {
        assert_eq!(sample(TEXT, "failover_role_changes_total{role=\"standby\"}"), Some(3));
        assert_eq!(sample(TEXT, "failover_role_changes_total"), None);
    }
}
