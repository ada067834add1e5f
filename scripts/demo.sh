#!/usr/bin/env bash
# make demo: start the bundled Atlas simulator on a free loopback port, export three months for
# its two orgs into ./out/ with the command-line tool, print the summary (files, usage, the
# reconciliation of each invoice), write the cost report ./out/report.html, stop the simulator.
# Nothing leaves this machine. Run it twice: the second run finds every file unchanged.
set -euo pipefail

bin=${BIN:-bin/atlas-billing-export}
out=${OUT:-out}
tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# Each Cost Explorer query answers "still processing" once, so the demo shows the poll protocol:
# submit, wait 5 s, poll (processing), wait 10 s, poll (ready), stream to disk, fetch invoices.
"$bin" simulate --addr 127.0.0.1:0 --ready-file "$tmp/ready" --ready-after-polls 1 \
  --first-month 2024-01 >"$tmp/sim.out" 2>"$tmp/sim.log" &
pid=$!
for _ in $(seq 100); do
  [ -s "$tmp/ready" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then echo "demo: the simulator did not start:" >&2; cat "$tmp/sim.log" >&2; exit 1; fi
  sleep 0.1
done
[ -s "$tmp/ready" ] || { echo "demo: the simulator did not start within 10 s" >&2; exit 1; }

# The simulator prints its base URL, its built-in demo credentials (not secrets) and its org ids.
eval "$(grep '^export ' "$tmp/sim.out")"
echo "Atlas simulator at $MONGODB_ATLAS_BASE_URL; exporting 2024-04 to 2024-06 for orgs $ABX_ORG_IDS into ./$out/"
echo
# --strict: the simulator's invoices reconcile and every file normalizes, so any warning is a bug.
"$bin" run --from 2024-04 --to 2024-06 --out "$out" --concurrency 6 --strict --report "$out/report.html"
echo
echo "The cost report: $out/report.html (open it in a browser: file://$(cd "$out" && pwd)/report.html)"
