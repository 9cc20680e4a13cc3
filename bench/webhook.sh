#!/usr/bin/env bash
# The webhook under load (internal/server BenchmarkWebhookLoad: in-process
# senders posting generated EventLists of realistic audit events over TLS
# to a real webhook server and driver) at GOMAXPROCS 1 and 2; prints
# events/s and the p50/p99 time from a request's receipt to its alerts
# being handed to the outputs, and the p99 to its acknowledgement.
#
#   bench/webhook.sh                      # 20 s per core count
#   BENCH_DURATION=60s bench/webhook.sh
#
# The senders run in the same process, on the same cores, as the server:
# the figures are those of the whole, not of the server alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${BENCH_DURATION:-20s}
cd "$root"
go test -c -o /tmp/kanon-bench-server.test ./internal/server
printf '%-6s %10s %12s %12s %12s\n' cores events/s p50-alert-ms p99-alert-ms p99-ack-ms
for c in 1 2; do
	GOMAXPROCS=$c /tmp/kanon-bench-server.test -test.run XXX -test.bench WebhookLoad -test.benchtime 1x \
		-test.cpu "$c" -loadtest.duration="$duration" >/tmp/kanon-bench-webhook.$c.txt 2>&1 || {
		cat /tmp/kanon-bench-webhook.$c.txt >&2
		exit 1
	}
	awk -v c="$c" '/^BenchmarkWebhookLoad/ {
		for (i = 1; i <= NF; i++) v[$(i + 1)] = $i
		printf "%-6s %10.0f %12s %12s %12s\n", c, v["events/s"], v["p50-alert-ms"], v["p99-alert-ms"], v["p99-ack-ms"]
	}' /tmp/kanon-bench-webhook.$c.txt
done
