#!/bin/sh
# Runs every fuzz target of a build for a bounded time, each from its
# committed seed corpus (fuzz/corpus/<target>/, read only) plus a scratch
# corpus in the build directory (where new inputs go; never committed).
# Exits non-zero if any target found a crash, a sanitizer report, a
# broken promise (abort) or a hang (an input that runs over 60 s).
# Usage: fuzz/run.sh BUILD_DIR SECONDS_EACH [TARGET...]
set -u
build=${1:?usage: fuzz/run.sh BUILD_DIR SECONDS_EACH [TARGET...]}
secs=${2:?usage: fuzz/run.sh BUILD_DIR SECONDS_EACH [TARGET...]}
shift 2
src=$(cd "$(dirname "$0")" && pwd)
targets=${*:-fuzz_open fuzz_ring fuzz_rpc fuzz_names fuzz_topic}
failed=""
for t in $targets; do
	bin=$build/fuzz/$t
	scratch=$build/fuzz-scratch/$t
	mkdir -p "$scratch/corpus" "$scratch/artifacts"
	log=$scratch/last.log
	echo "=== $t: $secs s"
	# -timeout: an input that runs this long is a hang (every wait the
	# targets make has timeout 0; an input takes milliseconds, but a
	# loaded machine has been seen to stall one for 38 s); -max_len:
	# room for a region header (12288 bytes) and names past PATH_MAX.
	"$bin" -max_total_time="$secs" -timeout=60 -max_len=16384 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$scratch/artifacts/" \
		"$scratch/corpus" "$src/corpus/$t" >"$log" 2>&1 &
	pid=$!
	wait $pid
	rc=$?
	# What a target that died could not remove (names carry its pid).
	# By hand, as shmk.h documents it: a script has no shmk_path().
	rm -rf "/dev/shm/fz-names.$pid" "/dev/shm/shmk.fz$pid."*
	grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^#[0-9]+.*DONE' "$log" |
		sed "s/^/$t: /"
	if [ $rc -ne 0 ]; then
		failed="$failed $t"
		tail -n 40 "$log"
		echo "$t: FAILED (exit $rc); reproducer in $scratch/artifacts/"
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz: FAILED:$failed"
	exit 1
fi
echo "fuzz: every target ran $secs s without a finding"
