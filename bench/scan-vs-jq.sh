#!/usr/bin/env bash
# kanon scan against jq running Elastic's rule R1, on the same machine, in
# one run. See bench/README.md for what it measures and how to read it.
#
#   bench/scan-vs-jq.sh                 # 300 MB logs, 3 runs of each
#   BENCH_3GB=1 bench/scan-vs-jq.sh     # also 3 GB (slow: RSS for a 10x input)
#
# Environment: BENCH_DIR (work directory, default /tmp/kanon-bench; the
# generated logs are kept there and reused), BENCH_MB (size of the small
# logs, default 300), BENCH_REPEAT (runs of each measurement, default 3; the
# median is reported), BENCH_3GB=1 (add the 3 GB logs, measured once),
# KANON_BIN (a kanon binary to measure instead of the one built here, for
# a before/after comparison).
set -euo pipefail

need() {
	if ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; then
		echo "scan-vs-jq: package $1 is not installed (apt-get install $1)" >&2
		exit 1
	fi
}
need jq
need time
[ -x /usr/bin/time ] || { echo "scan-vs-jq: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
command -v go >/dev/null || { echo "scan-vs-jq: go is not on PATH" >&2; exit 1; }

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${BENCH_DIR:-/tmp/kanon-bench}
mb=${BENCH_MB:-300}
repeat=${BENCH_REPEAT:-3}
mkdir -p "$dir/bin" "$dir/out"
(cd "$root" && go build -o "$dir/bin/kanon" ./cmd/kanon && go build -o "$dir/bin/kanon-loadgen" ./cmd/kanon-loadgen)
kanon=${KANON_BIN:-$dir/bin/kanon}

# One core: the process is pinned to CPU 0 (when taskset exists) and Go
# told so; two cores: both CPUs.
pin1=()
if command -v taskset >/dev/null; then pin1=(taskset -c 0); fi

# gen KIND MB: the generated log of KIND (real: ~2 % anonymous, 10 % with
# bodies; anon: every event anonymous), about MB megabytes, seed 1.
gen() {
	local kind=$1 size=$2 f=$dir/$1-$2MB.log
	if [ ! -s "$f" ]; then
		case $kind in
		real) "$dir/bin/kanon-loadgen" -n $((size * 1000000 / 1387)) -o "$f.tmp" >&2 ;;
		anon) "$dir/bin/kanon-loadgen" -n $((size * 1000000 / 708)) -anonymous 1 -bodies 0 -o "$f.tmp" >&2 ;;
		esac
		mv "$f.tmp" "$f"
	fi
	echo "$f"
}

# measure NAME LOG CORES CMD...: runs CMD (with LOG as its input, its
# output to out/NAME.out) $reps times and records the median wall time
# and the largest peak RSS in the variables res_s and res_rss.
measure() {
	local name=$1 log=$2 cores=$3
	shift 3
	local times=() rss=0 i pre=()
	if [ "$cores" = 1 ]; then pre=("${pin1[@]}"); fi
	for ((i = 0; i < reps; i++)); do
		rm -rf "$dir/state"
		GOMAXPROCS=$cores /usr/bin/time -f '%e %M' -o "$dir/time" "${pre[@]}" "$@" "$log" >"$dir/out/$name.out"
		read -r s m <"$dir/time"
		times+=("$s")
		if ((m > rss)); then rss=$m; fi
	done
	res_s=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	res_rss=$rss
	res_all=${times[*]}
}

# row LABEL LOG CORES: prints one line of the table from res_*.
row() {
	local bytes events
	bytes=$(stat -c %s "$2")
	events=$(wc -l <"$2")
	awk -v l="$1" -v c="$3" -v b="$bytes" -v e="$events" -v s="$res_s" -v r="$res_rss" -v jq="${jq_s:-0}" -v all="$res_all" 'BEGIN {
		ratio = (jq > 0 && s > 0) ? sprintf("%.1fx", jq / s) : "-"
		printf "%-34s %5s %8.0f %11.0f %7s %8.0f   (%s s)\n", l, c, b / s / 1e6, e / s, ratio, r / 1024, all
	}'
}

same() { # same A B: the alerts of runs A and B are byte-identical
	if ! cmp -s "$dir/out/$1.out" "$dir/out/$2.out"; then
		echo "scan-vs-jq: FAIL: the alerts of $1 and $2 differ:" >&2
		diff "$dir/out/$1.out" "$dir/out/$2.out" | head -20 >&2
		exit 1
	fi
	echo "  alerts identical: $1 = $2 ($(wc -l <"$dir/out/$1.out") alerts)"
}

scan=("$kanon" scan -q -o jsonl --exit-zero)
suite() {
	local size=$1 real anon
	real=$(gen real "$size")
	anon=$(gen anon "$size")
	echo
	echo "== $size MB: $(basename "$real") ($(wc -l <"$real") events), $(basename "$anon") ($(wc -l <"$anon") events); median of $reps"
	printf '%-34s %5s %8s %11s %7s %8s\n' run cores MB/s events/s "vs jq" "RSS MB"
	measure "jq-$size" "$real" 1 jq -c -f "$root/bench/r1.jq"
	jq_s=$res_s
	row "jq, Elastic's rule R1 only" "$real" 1
	for c in 1 2; do
		measure "scan-$size-$c" "$real" "$c" "${scan[@]}"
		row "kanon scan, built-in rules" "$real" "$c"
	done
	for c in 1 2; do
		measure "state-$size-$c" "$real" "$c" "${scan[@]}" --state-dir "$dir/state"
		row "kanon scan --state-dir" "$real" "$c"
	done
	measure "nopf-$size" "$real" 1 "${scan[@]}" --no-prefilter
	row "kanon scan --no-prefilter" "$real" 1
	measure "jq-anon-$size" "$anon" 1 jq -c -f "$root/bench/r1.jq"
	jq_s=$res_s
	row "jq R1, all anonymous" "$anon" 1
	for c in 1 2; do
		measure "anon-$size-$c" "$anon" "$c" "${scan[@]}"
		row "kanon scan, all anonymous" "$anon" "$c"
	done
	measure "anon-nopf-$size" "$anon" 2 "${scan[@]}" --no-prefilter --decoders 0
	row "... --no-prefilter --decoders 0" "$anon" 2
	jq_s=

	# The alerts do not depend on the cores, the decoders, the prefilter
	# or the store.
	same "scan-$size-1" "scan-$size-2"
	same "scan-$size-1" "state-$size-1"
	same "scan-$size-1" "state-$size-2"
	same "scan-$size-1" "nopf-$size"
	same "anon-$size-1" "anon-$size-2"
	same "anon-$size-1" "anon-nopf-$size"
	# jq and kanon agree on R1 once max_signals is lifted.
	local k j
	k=$("${scan[@]}" --rule elastic-k8s-anonymous-request-authorized --no-max-signals "$real" | wc -l)
	j=$(wc -l <"$dir/out/jq-$size.out")
	if [ "$k" != "$j" ]; then
		echo "scan-vs-jq: FAIL: R1 matches $j events in jq, $k in kanon --no-max-signals" >&2
		exit 1
	fi
	echo "  R1: jq and kanon --no-max-signals both match $j events"
}

echo "kanon ${KANON_BIN:-$(cd "$root" && git describe --always --dirty 2>/dev/null || echo '?')}, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(jq --version)"
reps=$repeat
suite "$mb"
if [ "${BENCH_3GB:-}" = 1 ]; then
	reps=1
	suite 3000
fi
