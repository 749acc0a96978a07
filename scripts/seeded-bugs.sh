#!/usr/bin/env bash
# Seeded safety bugs must be caught by a named safety property.
#
# Each patch in scripts/seeded-bugs/ puts one small, plausible safety bug
# into failover-core (a voter that grants while promised elsewhere, a zero
# drift margin, a vote sent before it is persisted...). For each, this
# applies the patch, runs the core's rule, regression and chaos tests (and,
# with --with-model, the exhaustive model), reverts the patch, and requires
# that the failure names a safety invariant: a pinned state count or a
# timing bound that fails is not enough. It prints one line per bug and
# exits non-zero if any bug got through, or if a patch no longer applies
# (then rewrite the patch for the code as it is now).
#
#   bash scripts/seeded-bugs.sh [--with-model]
set -euo pipefail
cd "$(dirname "$0")/.."

with_model=0
[ "${1:-}" = "--with-model" ] && with_model=1

# Every name a safety check reports (core/src/sim/invariants.rs, the
# simulator's history checks, the model's properties).
names='at_most_one_active|promises_outlast_lease|lease_backed_by_majority|active_only_within_lease|active_only_in_own_term|only_electable_sites_campaign|persisted_before_sent|one_vote_per_term|epochs_increase|actuation_epochs_strictly_increase|manual_mode_needs_approval|manual_mode_changes_only_with_approval|site_in_maintenance_never_elected|lost_state_never_votes'

applied=""
trap '[ -n "$applied" ] && git apply -R "$applied"' EXIT

failed=0
for patch in scripts/seeded-bugs/*.patch; do
    bug=$(basename "$patch" .patch)
    if ! git apply "$patch"; then
        echo "$bug: the patch no longer applies; rewrite it for the current code" >&2
        failed=1
        continue
    fi
    applied=$patch
    out=$(CHAOS_SEEDS=300 cargo test -q -p failover-core --no-fail-fast \
        --test rules --test regression --test chaos 2>&1 || true)
    if [ "$with_model" = 1 ]; then
        out+=$(cargo test --release -q -p failover-core --test model -- --nocapture --test-threads 1 2>&1 || true)
    fi
    git apply -R "$patch"
    applied=""
    caught=$(printf '%s\n' "$out" | { grep -oE "\b($names)\b" || true; } | sort | uniq -c | sort -rn |
        awk '{printf "%s%s (%s)", sep, $2, $1; sep=", "}')
    if [ -n "$caught" ]; then
        echo "$bug: caught by $caught"
    else
        echo "$bug: NOT CAUGHT by any named safety property" >&2
        printf '%s\n' "$out" | { grep -E "panicked|test result" || true; } | sed -n 1,5p >&2
        failed=1
    fi
done
exit "$failed"
