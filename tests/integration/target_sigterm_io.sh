#!/bin/bash
# SIGTERM with I/O in flight: iscsi_load keeps WRITE(16)s in flight, each
# block stamped with its LBA and the write's sequence number, and records
# every write acknowledged with GOOD; a second session reads meanwhile.
# The target gets SIGTERM mid-way: it must exit 0 (no leak under ASan)
# within a bound, the writer must have had commands in flight when the
# connection went, and every acknowledged write must be in the backing
# file. Twice: 4 KiB writes on io_uring, then 128 KiB writes (R2T and
# Data-Out) on the synchronous backing store.
#
# usage: target_sigterm_io.sh ISER-TARGET ISCSI-LOAD|none
set -u
bin=$1
load=${2:-none}
# shellcheck source=target_lib.sh
. "$(dirname "$0")/target_lib.sh"
tl_init sigterm-io

[ -x "$load" ] || skip "iscsi_load not built (needs libiscsi-dev)"

run_once() { # ROUND BLOCKS-PER-WRITE DEPTH
  local round=$1 blocks=$2 depth=$3 lrc rrc lp rp
  tl_start 64M
  if [ -n "${ISERKIT_IOQ:-}" ] && ! grep -q "runs synchronously" "$log"; then
    not_ok "$round: ISERKIT_IOQ=$ISERKIT_IOQ did not force the synchronous backing store"
  fi
  # Emptied here: the jobs' own redirections may come after our first grep.
  : >"$dir/load.out"
  : >"$dir/read.out"
  "$load" write "$url" -d "$depth" -b "$blocks" -t 30 -p 500 -a "$dir/acks" >"$dir/load.out" 2>&1 &
  lp=$!
  "$load" read "$url" -d 16 -t 30 -p 100 >"$dir/read.out" 2>&1 &
  rp=$!
  tl_children=("$lp" "$rp")
  for _ in $(seq 200); do
    grep -q '^acked' "$dir/load.out" && grep -q '^acked' "$dir/read.out" && break
    if ! tl_running "$lp" || ! tl_running "$rp"; then break; fi
    sleep 0.05
  done
  if ! grep -q '^acked' "$dir/load.out" || ! grep -q '^acked' "$dir/read.out"; then
    not_ok "$round: the load did not get going"
    cat "$dir/load.out" "$dir/read.out"
    tl_stop
    return
  fi
  tl_stop
  tl_wait_exit "$lp" 40
  lrc=$?
  tl_wait_exit "$rp" 40
  rrc=$?
  tl_children=()
  if [ $rrc -ne 2 ]; then
    not_ok "$round: the reading session ended with exit $rrc, not by the target going:"
    cat "$dir/read.out"
  fi
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
