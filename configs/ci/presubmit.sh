#!/bin/sh
# A pre-submit start-up check as one CI step, for any CI: measures the commits of this checkout
# (HEAD) against their merge base with the target branch, prints the verdict table, and writes it
# as Markdown (for a job summary or a merge request comment) and as JUnit XML (test reports).
#
#   TTFB_LAB_SERVER=https://ttfb-lab.example.com TTFB_LAB_TOKEN=... configs/ci/presubmit.sh main
#
# Arguments: the target branch (default: main). Environment:
#   TTFB_LAB_SERVER, TTFB_LAB_TOKEN  the server and a token with the submit scope (required)
#   TTFB_LAB_REPO                    the server's repository name (default: git config ttfb-lab.repo,
#                                    the remote's URL, or the server's only repository)
#   TTFB_LAB_CLI                     the ttfb-lab binary (default: ttfb-lab on PATH)
#   TTFB_LAB_INCONCLUSIVE            pass (default) or fail: what an inconclusive verdict does
#   TTFB_LAB_UNREACHABLE             fail-closed (default) or fail-open: a server that cannot be reached
#   TTFB_LAB_SUMMARY, TTFB_LAB_JUNIT where to write the Markdown and the JUnit report
#                                    (default: ttfb-lab-summary.md, ttfb-lab-junit.xml)
# Exit: 0 no regression (or inconclusive, by default), 1 regression, 2 error.
set -u
target="${1:-main}"
cli="${TTFB_LAB_CLI:-ttfb-lab}"
summary="${TTFB_LAB_SUMMARY:-ttfb-lab-summary.md}"
junit="${TTFB_LAB_JUNIT:-ttfb-lab-junit.xml}"

# CI clones are often shallow and hold only the commit built: the merge base must be there.
git fetch --quiet --no-tags origin "+refs/heads/$target:refs/remotes/origin/$target" 2>/dev/null || true
if [ "$(git rev-parse --is-shallow-repository 2>/dev/null)" = "true" ]; then
  git fetch --quiet --unshallow origin 2>/dev/null || true
fi

set -- presubmit --commit HEAD --upstream "origin/$target" --summary "$summary" --junit "$junit" \
  --unreachable "${TTFB_LAB_UNREACHABLE:-fail-closed}"
[ -n "${TTFB_LAB_REPO:-}" ] && set -- "$@" --repo "$TTFB_LAB_REPO"
"$cli" "$@"
code=$?
case $code in
  0) exit 0 ;;
  3) if [ "${TTFB_LAB_INCONCLUSIVE:-pass}" = "fail" ]; then exit 1; fi
     echo "ttfb-lab: inconclusive (no regression shown, none ruled out); passing" >&2
     exit 0 ;;
  *) exit "$code" ;;
esac
