#!/usr/bin/env bash
# Mutation testing of failover-core with cargo-mutants (settings in
# .cargo/mutants.toml).
#
#   bash scripts/mutants.sh full   # every mutant of the crate; results go to
#                                  # docs/mutants/ and the commit is recorded
#                                  # in docs/mutants/BASELINE
#   bash scripts/mutants.sh diff   # only mutants in core code changed since
#                                  # that commit (the test command runs this)
#
# A missed mutant fails the run: kill it with a test, or, if it truly
# cannot change behaviour, add it to exclude_re in .cargo/mutants.toml with
# the reason in docs/mutants/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-diff}"
if ! command -v cargo-mutants >/dev/null; then
    echo "cargo-mutants is not installed: cargo install --locked cargo-mutants@27.1.0" >&2
    exit 1
fi
jobs="${MUTANTS_JOBS:-2}"

case "$mode" in
full)
    out="$(mktemp -d)"
    tested="$(git rev-parse HEAD)"
    status=0
    cargo mutants -p failover-core --jobs "$jobs" --output "$out" || status=$?
    for f in caught missed timeout unviable; do
        sort "$out/mutants.out/$f.txt" > "docs/mutants/$f.txt"
    done
    echo "$tested" > docs/mutants/BASELINE
    echo "full run: $(wc -l < docs/mutants/caught.txt) caught, $(wc -l < docs/mutants/missed.txt) missed," \
        "$(wc -l < docs/mutants/unviable.txt) unviable, $(wc -l < docs/mutants/timeout.txt) timeouts"
    rm -rf "$out"
    exit "$status"
    ;;
diff)
    base="$(cat docs/mutants/BASELINE)"
    if ! git cat-file -e "$base^{commit}" 2>/dev/null; then
        echo "docs/mutants/BASELINE names $base, which this clone does not have" >&2
        exit 1
    fi
    diff="$(mktemp)"
    trap 'rm -f "$diff"' EXIT
    git diff "$base" -- core/src > "$diff"
    if [ ! -s "$diff" ]; then
        echo "mutants: no core code changed since the full run at $base"
        exit 0
    fi
    # A budget: a change too large to mutate here wants a new full run.
    budget="${MUTANTS_BUDGET_S:-1200}"
    status=0
    timeout "$budget" cargo mutants -p failover-core --jobs "$jobs" --in-diff "$diff" --output "$(mktemp -d)" ||
        status=$?
    if [ "$status" = 124 ]; then
        echo "mutants: the changes since $base take more than ${budget}s to mutate; run 'bash scripts/mutants.sh full'" >&2
    fi
    exit "$status"
    ;;
*)
    echo "usage: $0 full|diff" >&2
    exit 2
    ;;
esac
