#!/bin/bash
# Initiators killed mid-I/O: 20 times, iscsi_load keeps 32 READ(16)s and
# WRITE(16)s (up to 128 KiB, so R2Ts too) in flight and is killed with
# SIGKILL. The target must stay up, let go of every dead connection (its
# file descriptors come back to what they were), serve a fresh session
# whose commands all complete GOOD, and exit 0 on SIGTERM (under ASan,
# with no leak).
#
# usage: target_kill_initiator.sh ISER-TARGET ISCSI-LOAD|none
set -u
bin=$1
load=${2:-none}
# shellcheck source-path=SCRIPTDIR source=target_lib.sh
. "$(dirname "$0")/target_lib.sh"
tl_init kill-initiator

[ -x "$load" ] || skip "iscsi_load not built (needs libiscsi-dev)"

tl_start 64M
fds0=$(tl_nfds)
rounds=20
killed=0
for i in $(seq $rounds); do
  mode=mix
  [ $((i % 2)) -eq 0 ] && mode="write -b 256"
  # Emptied here: the job's own redirection may come after our first grep.
  : >"$dir/load.out"
  # shellcheck disable=SC2086 # $mode is two words on purpose
  "$load" $mode "$url" -d 32 -t 30 -p $((1 + (i * 37) % 400)) >"$dir/load.out" 2>&1 &
  lp=$!
  tl_children=("$lp")
  for _ in $(seq 200); do
    grep -q '^acked' "$dir/load.out" && break
    tl_running "$lp" || break
    sleep 0.05
  done
  if ! grep -q '^acked' "$dir/load.out" || ! tl_running "$lp"; then
    tl_running "$lp" && kill -KILL "$lp"
    wait "$lp"
    not_ok "round $i: the load did not get going (exit $?):"
    cat "$dir/load.out"
    tail -5 "$log"
    break
  fi
  tl_running "$lp" && kill -KILL "$lp"
  wait "$lp" 2>/dev/null
  lrc=$?
  tl_children=()
  if [ $lrc -ne 137 ]; then
    not_ok "round $i: the load ended by itself (exit $lrc) before the kill:"
    cat "$dir/load.out"
    break
  fi
  killed=$((killed + 1))
  if ! tl_running "$pid"; then
    not_ok "round $i: iser-target died"
    tail -40 "$log"
    pid=
    break
  fi
done
[ $killed -eq $rounds ] && ok "$rounds initiators killed with commands in flight; the target is up"

if [ -n "$pid" ]; then
  # Every dead connection is let go: the descriptors are what they were.
  for _ in $(seq 100); do
    [ "$(tl_nfds)" -eq "$fds0" ] && break
    sleep 0.05
  done
  if [ "$(tl_nfds)" -eq "$fds0" ]; then
    ok "every dead connection released ($fds0 file descriptors, as before)"
  else
    not_ok "$(tl_nfds) file descriptors 5 s after the last kill, $fds0 before the first"
    ls -l "/proc/$pid/fd"
  fi
  if "$load" mix "$url" -d 32 -t 1 >"$dir/load.out" 2>&1; then
    ok "a fresh session: $(tail -1 "$dir/load.out")"
  else
    not_ok "a fresh session failed:"
    cat "$dir/load.out"
  fi
  if command -v iscsi-inq >/dev/null; then
    if iscsi-inq "$url" 2>&1 | grep -q "^Vendor:ISERKIT"; then
      ok "iscsi-inq logs in"
    else
      not_ok "iscsi-inq cannot log in"
    fi
  fi
  tl_stop
fi

[ "$fails" -eq 0 ]
