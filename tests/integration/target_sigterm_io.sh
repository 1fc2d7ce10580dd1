#!/bin/bash
# SIGTERM with I/O in flight: iscsi_load keeps WRITE(16)s in flight, each
# block stamped with its LBA and the write's sequence number, and records
# every write acknowledged with GOOD; two more sessions read meanwhile.
# The target gets SIGTERM mid-way: it must exit 0 (no leak under ASan)
# within 5 s, the writer must have had commands in flight when the
# connection went, and every acknowledged write must be in the backing
# file. Twice: 4 KiB writes on io_uring, then 128 KiB writes (R2T and
# Data-Out) on the synchronous backing store.
#
# usage: target_sigterm_io.sh ISER-TARGET ISCSI-LOAD|none
set -u
bin=$1
load=${2:-none}
# shellcheck source-path=SCRIPTDIR source=target_lib.sh
. "$(dirname "$0")/target_lib.sh"
tl_init sigterm-io

[ -x "$load" ] || skip "iscsi_load not built (needs libiscsi-dev)"

run_once() { # ROUND BLOCKS-PER-WRITE DEPTH
  local round=$1 blocks=$2 depth=$3 lrc rrc lp r rps=()
  tl_start 64M
  if [ -n "${ISERKIT_IOQ:-}" ] && ! grep -q "runs synchronously" "$log"; then
    not_ok "$round: ISERKIT_IOQ=$ISERKIT_IOQ did not force the synchronous backing store"
  fi
  # Emptied here: the jobs' own redirections may come after our first grep.
  : >"$dir/load.out"; : >"$dir/read1.out"; : >"$dir/read2.out"
  "$load" write "$url" -d "$depth" -b "$blocks" -t 30 -p 500 -a "$dir/acks" >"$dir/load.out" 2>&1 &
  lp=$!
  for r in 1 2; do
    "$load" read "$url" -d 16 -t 30 -p 100 >"$dir/read$r.out" 2>&1 &
    rps+=($!)
  done
  tl_children=("$lp" "${rps[@]}")
  for _ in $(seq 200); do
    [ "$(grep -l '^acked' "$dir"/{load,read1,read2}.out | wc -l)" -eq 3 ] && break
    for r in "${tl_children[@]}"; do tl_running "$r" || break 2; done
    sleep 0.05
  done
  if [ "$(grep -l '^acked' "$dir"/{load,read1,read2}.out | wc -l)" -ne 3 ]; then
    not_ok "$round: the load did not get going"
    cat "$dir"/{load,read1,read2}.out
    tl_stop
    return
  fi
  tl_stop
  tl_wait_exit "$lp" 40
  lrc=$?
  for r in 1 2; do
    tl_wait_exit "${rps[r - 1]}" 40
    rrc=$?
    if [ $rrc -ne 2 ]; then
      not_ok "$round: reading session $r ended with exit $rrc, not by the target going:"
      cat "$dir/read$r.out"
    fi
  done
  tl_children=()
  if [ $lrc -eq 2 ] && grep -qE 'in-flight-at-drop [1-9]' "$dir/load.out"; then
    ok "$round: SIGTERM came with writes in flight: $(tail -1 "$dir/load.out")"
  else
    not_ok "$round: the initiator did not see the target go mid-I/O (exit $lrc):"
    cat "$dir/load.out"
  fi
  if "$load" check "$dir/lun0.img" "$dir/acks" >"$dir/check.out" 2>&1; then
    ok "$round: $(tail -1 "$dir/check.out")"
  else
    not_ok "$round: acknowledged writes lost:"
    head -25 "$dir/check.out"
  fi
  rm -f "$dir/lun0.img" "$dir/acks"
}

run_once "io_uring, 4 KiB writes" 8 64
# The synchronous backing store too (ISERKIT_IOQ=sync forces it).
ISERKIT_IOQ=sync run_once "sync backing store, 128 KiB writes" 256 32

[ "$fails" -eq 0 ]
