#!/bin/bash
# The initiator library against targets: tgt (nobody here wrote it) with
# and without CRC32C digests and with one-way and mutual CHAP, then
# iser-target killed with SIGKILL and restarted mid-run, and frozen with
# SIGSTOP: long enough for the whole chain of command timeout, ABORT TASK,
# LUN RESET and reconnection; short enough for the ABORT TASK to be
# answered; and with no command timing out, for the NOP-Out keepalive to
# find the target dead. Over iSCSI/TCP and iSER. Each run is
# ini_stress: random reads and writes at queue depth 32 with every byte
# checked against a shadow copy; no command may fail.
#
# usage: ini_peers.sh ISER-TARGET INI-STRESS
set -u
bin=$1
stress=$2
# shellcheck source-path=SCRIPTDIR source=target_lib.sh
. "$(dirname "$0")/target_lib.sh"
tl_init ini-peers

tgt_pid=
tgt_ctl=
tgt_port=
tgt_iqn=iqn.2026-11.org.iserkit:tgt
stop_tgt() {
  [ -n "$tgt_pid" ] || return 0
  timeout 5 tgtadm -C "$tgt_ctl" --op delete --mode system >/dev/null 2>&1
  tl_running "$tgt_pid" && kill -KILL "$tgt_pid"
  wait "$tgt_pid" 2>/dev/null
  rm -f "/var/run/tgtd/socket.$tgt_ctl" "/var/run/tgtd/socket.$tgt_ctl.lock"
  tgt_pid=
}
trap 'stop_tgt; tl_cleanup' EXIT

# start_tgt: tgtd on its own port and control socket, LUN 1 on a file,
# listening when it returns 0. Another test's tgtd may hold a number we
# pick, so try a few.
start_tgt() {
  local t try
  truncate -s 64M "$dir/tgt.img"
  mkdir -p /var/run/tgtd
  for try in 0 1 2 3 4; do
    tgt_ctl=$((100 + ($$ + try * 977) % 9000)) # tgtd takes small control ports only
    tgt_port=$((30000 + ($$ + try * 977) % 20000))
    ss -Htln "sport = :$tgt_port" | grep -q . && continue
    [ -e "/var/run/tgtd/socket.$tgt_ctl" ] && continue
    tgtd -f -C "$tgt_ctl" --iscsi "portal=127.0.0.1:$tgt_port" >>"$dir/tgt.log" 2>&1 &
    tgt_pid=$!
    for _ in $(seq 50); do
      tgtadm -C "$tgt_ctl" --op show --mode sys >/dev/null 2>&1 && break
      tl_running "$tgt_pid" || break
      sleep 0.1
    done
    t="tgtadm -C $tgt_ctl --lld iscsi"
    if tl_running "$tgt_pid" && $t --op new --mode target --tid 1 -T "$tgt_iqn" &&
      $t --op new --mode logicalunit --tid 1 --lun 1 -b "$dir/tgt.img" &&
      $t --op bind --mode target --tid 1 -I ALL; then
      for _ in $(seq 50); do
        ss -Htln "sport = :$tgt_port" | grep -q . && return 0
        sleep 0.1
      done
    fi
    stop_tgt
  done
  return 1
}

run() { # NAME ARGS...
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    ok "$name: $out"
  else
    not_ok "$name:"
    echo "$out" | tail -20
  fi
}

if ! command -v tgtd >/dev/null || [ "$(id -u)" != 0 ]; then
  echo "# tgt skipped: needs tgtd (package tgt) and root"
elif ! start_tgt; then
  not_ok "tgtd could not be set up"
  cat "$dir/tgt.log"
else
  t="tgtadm -C $tgt_ctl --lld iscsi"
  run "tgt" "$stress" 127.0.0.1 "$tgt_port" "$tgt_iqn" 1 3 32
  $t --op update --mode target --tid 1 -n HeaderDigest -v CRC32C
  $t --op update --mode target --tid 1 -n DataDigest -v CRC32C
  run "tgt, CRC32C digests" env STRESS_DIGESTS=1 "$stress" 127.0.0.1 "$tgt_port" "$tgt_iqn" 1 3 32
  $t --op new --mode account --user alice --password secretsecret12
  $t --op bind --mode account --tid 1 --user alice
  # tgt 1.0.85 chooses SHA-256 when offered, then cannot decode a 32-byte
  # CHAP_R ("buf[20] !sufficient"): MD5 only, as open-iscsi offers.
  export STRESS_CHAP_MD5=1
  run "tgt, CHAP" "$stress" 127.0.0.1 "$tgt_port" "$tgt_iqn" 1 2 8 alice secretsecret12
  $t --op new --mode account --user tgtuser --password targetsecret34
  $t --op bind --mode account --tid 1 --user tgtuser --outgoing
  run "tgt, mutual CHAP" "$stress" 127.0.0.1 "$tgt_port" "$tgt_iqn" 1 2 8 alice secretsecret12 \
    tgtuser targetsecret34
  if "$stress" 127.0.0.1 "$tgt_port" "$tgt_iqn" 1 1 1 alice secretsecret12 tgtuser wrong34wrong34 \
    >"$dir/o" 2>&1; then
    not_ok "tgt, mutual CHAP with a wrong target secret: logged in"
  else
    grep -q "failed mutual CHAP" "$dir/o" &&
      ok "tgt, mutual CHAP with a wrong target secret: $(cat "$dir/o")" ||
      not_ok "tgt, mutual CHAP with a wrong target secret: $(cat "$dir/o")"
  fi
  if "$stress" 127.0.0.1 "$tgt_port" "$tgt_iqn" 1 1 1 alice wrongsecret12 >"$dir/o" 2>&1; then
    not_ok "tgt, wrong CHAP secret: logged in"
  else
    grep -q "authentication failed" "$dir/o" && ok "tgt, wrong CHAP secret: $(cat "$dir/o")" ||
      not_ok "tgt, wrong CHAP secret: $(cat "$dir/o")"
  fi
  stop_tgt
fi

# recovery LABEL [TARGET-ARGS...]: iser-target killed and restarted, then
# frozen, under ini_stress; over iSCSI/TCP, then over iSER on the soft
# provider (INI_STRESS_ISER=1, tl_prefix=iser:), where the keepalive, the
# timeouts and the ABORT TASK travel as iSER messages.
recovery() {
  local label=$1 sp
  shift
  # iser-target killed and restarted: the run sees a delay, not an error.
  tl_start 64M "$@"
  "$stress" 127.0.0.1 "$port" "$iqn" 0 8 32 >"$dir/stress.out" 2>&1 &
  sp=$!
  tl_children=("$sp")
  sleep 2
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null
  pid=
  sleep 1.5
  "$bin" --portal "${tl_prefix:-}127.0.0.1:$port" --target "$iqn" --lun "$dir/lun0.img" "$@" \
    >>"$log" 2>&1 &
  pid=$!
  if tl_wait_exit "$sp" 60; then
    if grep -q 'reconnects [1-9]' "$dir/stress.out"; then
      ok "$label: iser-target killed and restarted: $(cat "$dir/stress.out")"
    else
      not_ok "$label: no reconnect counted: $(cat "$dir/stress.out")"
    fi
  else
    not_ok "$label: iser-target killed and restarted:"
    cat "$dir/stress.out"
  fi

  # frozen WHAT SECONDS REGEX...: ini_stress for 8 s at QD 16 with the
  # environment the caller set; 1.5 s in, iser-target is frozen (SIGSTOP)
  # for SECONDS; the run must end with no failure and its counters match
  # every REGEX.
  frozen() {
    local what=$1 secs=$2 re
    shift 2
    "$stress" 127.0.0.1 "$port" "$iqn" 0 8 16 >"$dir/stress.out" 2>&1 &
    sp=$!
    tl_children=("$sp")
    sleep 1.5
    kill -STOP "$pid"
    sleep "$secs"
    kill -CONT "$pid"
    if ! tl_wait_exit "$sp" 60 || ! grep -q 'failures 0 miscompares 0' "$dir/stress.out"; then
      not_ok "$label: iser-target frozen for $secs s ($what):"
      cat "$dir/stress.out"
      return
    fi
    for re in "$@"; do
      if ! grep -qE "$re" "$dir/stress.out"; then
        not_ok "$label: iser-target frozen for $secs s ($what): not /$re/: $(cat "$dir/stress.out")"
        return
      fi
    done
    ok "$label: iser-target frozen for $secs s ($what): $(cat "$dir/stress.out")"
  }
  # Command timeout 2 s: commands time out (2-3 s in: the check runs
  # each second), ABORT TASK gets no answer in 2 s, nor does the LUN
  # RESET after it (at most 7 s in); the connection is dropped, and the
  # session recovers on a new one once the target thaws (10.5 s in).
  STRESS_CMD_TIMEOUT=2 frozen "abort, LUN reset, reconnect" 9 \
    'timeouts [1-9]' 'aborts [1-9]' 'lun_resets [1-9]' 'reconnects [1-9]'
  # Frozen for 3.5 s: a command times out, and its ABORT TASK is
  # answered once the target thaws, before its own 2 s are up.
  STRESS_CMD_TIMEOUT=2 frozen "abort answered" 3.5 \
    'timeouts [1-9]' 'aborts [1-9]' 'tmf_rsps [1-9]'
  # Keepalive: a NOP-Out after 1 s without a word from the target; no
  # answer in 2 s more drops the connection (before any command timeout,
  # 30 s by default); recovery once the target thaws.
  STRESS_NOP_INTERVAL=1 frozen "keepalive" 6 \
    'timeouts 0 ' 'pings [1-9]' 'ping_fails [1-9]' 'reconnects [1-9]'
  tl_stop
}

recovery "iSCSI/TCP"
tl_prefix=iser: INI_STRESS_ISER=1 recovery "iSER/soft" --fabric soft
echo "# $fails failed"
[ "$fails" -eq 0 ]
