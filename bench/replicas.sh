#!/usr/bin/env bash
# kanon serve replicas on NATS JetStream sharing their state in Redis: 1, 2
# and 3 replicas in turn over the same generated stream (100,000 events
# with anonymous enumeration bursts), then 3 replicas of which one is
# killed with SIGKILL mid-stream while a fourth joins. Prints, per run,
# events/s, peak RSS per replica, Redis commands per event, and whether
# the union of the replicas' alerts is kanon scan's. See bench/README.md.
#
#   bench/replicas.sh
#   BENCH_EVENTS=200000 bench/replicas.sh
#
# Environment: BENCH_EVENTS (events, default 100000), BENCH_BATCH
# (messages a replica fetches at a time in parallel runs, default 16; a
# message is 100 events), BENCH_KEEP=1 (keep
# the work directory: logs, alerts), KANON_BIN (a kanon binary to measure
# instead of the one built here).
#
# It starts its own redis-server and nats-server (JetStream, with its
# monitoring endpoint) on free loopback ports in a temporary directory,
# removed at the end. Each run has a stream, a consumer and a Redis key
# prefix of its own.
set -euo pipefail

need() {
	command -v "$1" >/dev/null || { echo "replicas: $1 is not installed (apt-get install $2)" >&2; exit 1; }
}
need redis-server redis-server
need redis-cli redis-tools
need nats-server nats-server
need jq jq
need curl curl
need go golang

root=$(cd "$(dirname "$0")/.." && pwd)
events=${BENCH_EVENTS:-100000}
# 20 events/s of event time (100,000 events: 83 minutes), 0.5 % anonymous,
# 12 enumeration bursts an hour: no run of Elastic's rules reaches
# max_signals (see cmd/kanon/replicas_load_test.go, loadOptions).
gen=(-n "$events" -seed 13 -rate 20 -anonymous 0.005 -bursts 12)
dir=$(mktemp -d /tmp/kanon-replicas.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "${BENCH_KEEP:-}" = 1 ]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT

# freeport prints a loopback port nothing listens on.
freeport() {
	local p
	while :; do
		p=$(shuf -i 20000-60999 -n 1)
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
}
# waitport PORT LOG waits until something listens on PORT.
waitport() {
	for _ in $(seq 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return; fi
		sleep 0.1
	done
	echo "replicas: nothing listens on port $1 after 30 s; $2:" >&2
	tail -n 20 "$2" >&2
	exit 1
}

mkdir -p "$dir/bin" "$dir/nats"
(cd "$root" && go build -o "$dir/bin/kanon" ./cmd/kanon && go build -o "$dir/bin/kanon-loadgen" ./cmd/kanon-loadgen)
kanon=${KANON_BIN:-$dir/bin/kanon}
loadgen=$dir/bin/kanon-loadgen

rport=$(freeport)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
pids+=($!)
redis_pid=$!
nport=$(freeport)
mport=$(freeport)
nats-server -a 127.0.0.1 -p "$nport" -m "$mport" -js -sd "$dir/nats" >"$dir/nats.log" 2>&1 &
pids+=($!)
nats_pid=$!
waitport "$rport" "$dir/redis.log"
waitport "$nport" "$dir/nats.log"
waitport "$mport" "$dir/nats.log"
rcli() { redis-cli -p "$rport" "$@"; }

# The stream's events, and an event four days after them that closes
# every run and group, sent once the stream is drained.
"$loadgen" "${gen[@]}" -o "$dir/audit.log" 2>"$dir/loadgen.txt"
last=$(tail -n 1 "$dir/audit.log" | jq -r .stageTimestamp)
at=$(date -u -d "@$(($(date -u -d "$last" +%s) + 4 * 86400))" +%Y-%m-%dT%H:%M:%SZ)
head -n 1 "$dir/audit.log" | jq -c --arg at "$at" '.auditID = "bench-closing" | .requestReceivedTimestamp = $at | .stageTimestamp = $at' >"$dir/closing.log"
cat "$dir/audit.log" "$dir/closing.log" >"$dir/scan.log"
echo "stream: kanon-loadgen ${gen[*]}: $(cat "$dir/loadgen.txt")"

# rules IDS ALERTS... counts the alerts of ALERTS whose id is in the
# file IDS, by rule.
rules() {
	local f=$1
	shift
	cat "$@" | jq -rR 'fromjson? | "\(.id) \(.rule.id)"' | sort -u | join - "$f" |
		awk '{ n[$2]++ } END { for (r in n) { printf "%s%s %d", sep, r, n[r]; sep = ", " } }'
}
calc() { awk "BEGIN { print $* }"; }
ids() { sed -n 's/^{"id":"\([0-9a-f]*\)".*/\1/p' "$@" | sort -u; }

t0=$(date +%s.%N)
code=0
"$kanon" scan -o jsonl -q --dropped-hits "$dir/scan.log" >"$dir/scan.ndjson" || code=$?
[ "$code" = 0 ] || [ "$code" = 2 ] || { echo "replicas: kanon scan failed ($code)" >&2; exit 1; }
scan_s=$(calc "$(date +%s.%N) - $t0")
grep -v '"dropped":true' "$dir/scan.ndjson" | ids >"$dir/scan.ids"
dropped=$(grep -c '"dropped":true' "$dir/scan.ndjson" || true)
printf 'kanon scan: %d events in %.1f s (%.0f events/s), %d distinct alert ids, %d hits dropped at max_signals\n' \
	"$((events + 1))" "$scan_s" "$(calc "($events + 1) / $scan_s")" "$(wc -l <"$dir/scan.ids")" "$dropped"
jq -r 'select(.dropped != true) | .rule.id' "$dir/scan.ndjson" | sort | uniq -c | sed 's/^/  alerts (deliveries) /'

# consumer STREAM prints the kanon consumer's pending, ack-pending and
# acknowledged messages, and the time of its last acknowledgement, from
# nats-server's monitoring endpoint.
consumer() {
	curl -s "http://127.0.0.1:$mport/jsz?consumers=true" | jq -r --arg s "$1" \
		'[.account_details[]?.stream_detail[]? | select(.name == $s) | .consumer_detail[]? | select(.name == "kanon")][0]
		 | if . == null then "-1 -1 0 -" else "\(.num_pending) \(.num_ack_pending) \(.ack_floor.stream_seq) \(.ack_floor.last_active)" end'
}
# drained STREAM waits until every message is acknowledged and prints
# when the last was, in seconds since the epoch: the drain time does not
# depend on how often this asks (seldom, to leave the CPUs to kanon).
drained() {
	local p a f at
	for _ in $(seq 3000); do
		read -r p a f at < <(consumer "$1")
		if [ "$p" = 0 ] && [ "$a" = 0 ]; then date -d "$at" +%s.%N; return; fi
		sleep 0.2
	done
	echo "replicas: stream $1 not drained (pending $p, ack pending $a)" >&2
	exit 1
}
# acked STREAM N waits until N messages are acknowledged.
acked() {
	local p a f at
	for _ in $(seq 6000); do
		read -r p a f at < <(consumer "$1")
		if [ "$f" -ge "$2" ]; then return; fi
		sleep 0.05
	done
	echo "replicas: stream $1: $f of $2 messages acknowledged" >&2
	exit 1
}
# cpu PID... prints the CPU seconds (user and system) the processes used.
cpu() {
	local t=0 p
	for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
	calc "$t / $(getconf CLK_TCK)"
}
hwm() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
# commands prints the commands Redis has run, but for this script's own
# (INFO, and SCAN of the outbox keys).
commands() {
	rcli info commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" && $1 != "cmdstat_scan" { n += $3 } END { print n + 0 }'
}

msgs=$(((events + 99) / 100))
printf '\n%-8s %-8s %9s %7s %-16s %12s %-16s %s\n' replicas order events/s drain-s "peak RSS MB" "redis cmd/ev" "CPU s kanon/redis/nats" "alerts = scan's"
# bench NAME REPLICAS ORDER [kill]: one run on a stream of its own.
# ORDER is "ordered" (max_ack_pending=1, batch=1: one message in flight
# in the whole stream, as kanon scan reads it) or "parallel" (each
# replica fetches BENCH_BATCH messages at a time).
bench() {
	local name=$1 n=$2 order=$3 kill=${4:-} stream params store run i p
	stream=BENCH_$name
	run=$dir/$name
	mkdir -p "$run"
	"$loadgen" -nats "nats://127.0.0.1:$nport/bench.$name" -nats-stream "$stream" -from "$dir/audit.log" -per-message 100 2>"$run/publish.txt"
	if [ "$order" = ordered ]; then
		params="consumer=kanon&max_ack_pending=1&batch=1&ack_wait=5s&max_wait=200ms"
	else
		params="consumer=kanon&batch=${BENCH_BATCH:-16}&ack_wait=5s&max_wait=200ms"
	fi
	store="redis://127.0.0.1:$rport/0?prefix=$name"
	local -A pid=()
	start() {
		"$kanon" serve --listen "" --store "$store" --replica "$1" --lateness 48h --state-dir "$run/$1" \
			--source "nats://127.0.0.1:$nport/$stream?$params" --output "file:$run/$1.ndjson" \
			--log-format json 2>"$run/$1.log" &
		pid[$1]=$!
		pids+=($!)
	}
	local c0 t0 t1 r0 n0
	c0=$(commands)
	r0=$(cpu "$redis_pid")
	n0=$(cpu "$nats_pid")
	t0=$(date +%s.%N)
	for i in $(seq "$n"); do start "r$i"; done
	if [ -n "$kill" ]; then
		acked "$stream" $((msgs / 3))
		kill -KILL "${pid[r1]}"
		wait "${pid[r1]}" 2>/dev/null || true
		unset 'pid[r1]'
		acked "$stream" $((msgs / 2))
		start r4
	fi
	t1=$(drained "$stream")
	local r1 n1 k1
	r1=$(cpu "$redis_pid")
	n1=$(cpu "$nats_pid")
	k1=$(cpu "${pid[@]}")
	"$loadgen" -nats "nats://127.0.0.1:$nport/bench.$name" -from "$dir/closing.log" 2>>"$run/publish.txt"
	drained "$stream" >/dev/null
	# Alerts a killed replica decided and did not deliver are delivered
	# by another once their lease (a minute) has passed.
	for _ in $(seq 1800); do
		[ "$(rcli --scan --pattern "{$name}:d:o*" | wc -l)" = 0 ] && break
		sleep 0.1
	done
	local rss=()
	for i in $(printf '%s\n' "${!pid[@]}" | sort); do rss+=("$(hwm "${pid[$i]}")"); done
	for i in "${!pid[@]}"; do kill -TERM "${pid[$i]}"; done
	for i in "${!pid[@]}"; do
		for _ in $(seq 600); do kill -0 "${pid[$i]}" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "${pid[$i]}" 2>/dev/null; then
			echo "replicas: $i did not stop within a minute of SIGTERM" >&2
			kill -QUIT "${pid[$i]}"
			sleep 1
			tail -n 200 "$run/$i.log" >&2
			exit 1
		fi
		wait "${pid[$i]}" || { echo "replicas: $i exited with $?" >&2; tail -n 50 "$run/$i.log" >&2; exit 1; }
	done
	local c1 same
	c1=$(commands)
	ids "$run"/r*.ndjson >"$run/ids"
	if cmp -s "$run/ids" "$dir/scan.ids"; then
		same="yes ($(wc -l <"$run/ids") ids)"
	else
		comm -23 "$run/ids" "$dir/scan.ids" >"$run/only-replicas"
		comm -13 "$run/ids" "$dir/scan.ids" >"$run/only-scan"
		same="NO: $(wc -l <"$run/only-replicas") only the replicas' ($(rules "$run/only-replicas" "$run"/r*.ndjson)), $(wc -l <"$run/only-scan") only scan's ($(rules "$run/only-scan" "$dir/scan.ndjson"))"
	fi
	local label=$n
	[ -n "$kill" ] && label="3-1+1"
	printf '%-8s %-8s %9.0f %7.1f %-16s %12.2f %-22s %s\n' "$label" "$order" "$(calc "$events / ($t1 - $t0)")" \
		"$(calc "$t1 - $t0")" "$(IFS=,; echo "${rss[*]}")" "$(calc "($c1 - $c0) / $events")" \
		"$(printf '%.1f/%.1f/%.1f' "$k1" "$(calc "$r1 - $r0")" "$(calc "$n1 - $n0")")" "$same"
}

for order in parallel ordered; do
	for n in 1 2 3; do bench "$order$n" "$n" "$order"; done
done
bench kill-parallel 3 parallel kill
bench kill-ordered 3 ordered kill
