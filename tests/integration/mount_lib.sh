# shellcheck shell=bash
# Sourced by the mount_*.sh integration tests: iser-mount (a real FUSE
# mount) against targets that the test starts on 127.0.0.1 at ports of its
# own: iser-target, and tgt's tgtd with a private control port, so that a
# system tgtd is never touched. Everything started here is stopped by PID,
# and every mount is undone, also when the test fails (an EXIT trap).
#
# The caller sets tbin (iser-target) and mbin (iser-mount) and calls
# ml_init NAME. Afterwards: $dir (scratch, removed at exit), $fails (count
# of "not ok" lines), $kinds (the targets to run against: "iser iser-soft
# tgt", or without tgt, with a line saying why, when tgt cannot run here).
# Kind iser is iser-target over iSCSI/TCP; iser-soft is iser-target over
# iSER on the soft iWARP provider, mounted with iser://; tgt is tgtd.
# ISERKIT_KINDS="iser-soft", say, runs fewer.
#
# FUSE over io_uring (Linux 6.14 and later) is off unless the fuse module's
# enable_uring is set: ml_init sets it for the test, where it can (root),
# and puts the old value back at exit; $ml_uring is then 1. iser-mount
# takes /dev/fuse by default; ml_mount gives iser:// mounts -o uring
# unless they say no_uring, so that every script runs both.

# shellcheck disable=SC2034,SC2154 # tbin, mbin come from, the rest goes to, the caller
iqn_base=iqn.2026-11.org.iserkit
fails=0
dir=
kinds=
ml_pids=()  # helpers (fio, writers): TERM then KILL at exit
ml_mnts=()  # FUSE mount points
ml_loops=() # file systems mounted on top of a LUN file
ml_names=() # targets started by ml_start
ml_uring=0
ml_uring_param=/sys/module/fuse/parameters/enable_uring
ml_uring_was=
declare -A t_kind t_port t_iqn t_chap t_specs t_pid t_log url back lun mpid

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

ok() { echo "ok - $*"; }
not_ok() {
  echo "not ok - $*"
  fails=$((fails + 1))
}
skip() {
  echo "SKIP: $*"
  exit 77
}

# ml_running PID: whether our child PID still runs. Not kill -0: bash
# reaps its children itself, and a reaped PID may be anyone's.
ml_running() { jobs -rp | grep -qx "$1"; }

# ml_wait PID SECONDS: its exit status; 137 when it had to be killed.
ml_wait() {
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    ml_running "$1" || break
    sleep 0.05
  done
  ml_running "$1" && kill -KILL "$1"
  wait "$1"
}

ml_need() { # COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null || skip "$1 not found (Debian package $2; tests/deps.sh installs it)"
}

ml_init() { # NAME
  [ -x "$mbin" ] || skip "iser-mount not built ($mbin)"
  [ -x "$tbin" ] || skip "iser-target not built ($tbin)"
  ml_need fusermount3 fuse3
  ml_need mountpoint util-linux
  ml_need ss iproute2
  [ -c /dev/fuse ] || skip "no /dev/fuse (a container without FUSE?)"
  (exec 3<>/dev/fuse) 2>/dev/null || skip "/dev/fuse cannot be opened for reading and writing"
  dir=$(mktemp -d "/tmp/iserkit-$1.XXXXXX")
  trap ml_cleanup EXIT
  trap 'exit 130' INT TERM
  if [ -w "$ml_uring_param" ]; then
    ml_uring_was=$(cat "$ml_uring_param")
    echo Y 2>/dev/null >"$ml_uring_param" && ml_uring=1
  elif [ "$(cat "$ml_uring_param" 2>/dev/null)" = Y ]; then
    ml_uring=1
  fi
  [ "$ml_uring" = 1 ] ||
    echo "# FUSE over io_uring not tested: cannot set $ml_uring_param (before Linux 6.14, or not root)"
  kinds="iser iser-soft"
  if [ -n "${ISERKIT_KINDS:-}" ]; then
    kinds=$ISERKIT_KINDS
  elif [ -n "${ISERKIT_NO_TGT:-}" ]; then
    echo "# tgt round skipped: ISERKIT_NO_TGT is set"
  elif ! command -v tgtd >/dev/null || ! command -v tgtadm >/dev/null; then
    ml_no_tgt "tgtd not found (Debian package tgt)"
  elif [ "$(id -u)" != 0 ]; then
    ml_no_tgt "tgtd needs root (/var/run/tgtd)"
  else
    kinds="iser iser-soft tgt"
  fi
}

# ml_rdma_devices: whether the kernel has an RDMA device (verbs would be
# used by fabric auto).
ml_rdma_devices() { [ -n "$(ls /sys/class/infiniband 2>/dev/null)" ]; }

# ml_no_tgt WHY: a tgt round that cannot run is said so; in CI (which
# installs tgt and runs as root) it is a failure, not a quiet pass.
ml_no_tgt() {
  if [ -n "${CI:-}" ]; then
    not_ok "tgt round cannot run in CI: $1"
  else
    echo "# tgt round skipped: $1"
  fi
}

# Stop what we started, innermost first: helpers, file systems on a LUN,
# FUSE mounts (politely, then by killing iser-mount, then lazily), targets.
ml_cleanup() {
  local p m n
  for p in "${ml_pids[@]}"; do ml_running "$p" && kill -TERM "$p"; done
  for p in "${ml_pids[@]}"; do ml_wait "$p" 5 >/dev/null 2>&1; done
  for m in "${ml_loops[@]}"; do
    mountpoint -q "$m" && { timeout 20 umount "$m" || umount -l "$m"; }
  done
  for m in "${ml_mnts[@]}"; do
    mountpoint -q "$m" && timeout 10 fusermount3 -u "$m" 2>/dev/null
    [ -n "${mpid[$m]:-}" ] && ml_wait "${mpid[$m]}" 5 >/dev/null 2>&1
    mountpoint -q "$m" && fusermount3 -uz "$m"
    ml_kill_daemon "$m"
  done
  for n in "${ml_names[@]}"; do ml_stop "$n"; done
  [ -n "$ml_uring_was" ] && echo "$ml_uring_was" >"$ml_uring_param"
  if findmnt -rn -o TARGET | grep -q "^$dir/"; then
    echo "# $dir kept: something is still mounted under it"
  else
    rm -rf --one-file-system "$dir"
  fi
}

# ml_port: a TCP port on which nothing listens, none of ours either.
ml_port() {
  local p n used
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 12000))
    used=
    for n in "${ml_names[@]}"; do [ "${t_port[$n]:-}" = "$p" ] && used=1; done
    [ -z "$used" ] && [ -z "$(ss -Htan "sport = :$p")" ] && echo "$p" && return 0
  done
  echo "Bail out! no free TCP port"
  exit 1
}

# ml_start NAME KIND IQN CHAP LUNSPEC...: start a target of KIND (iser or
# tgt) named NAME, with CHAP "user:secret" or "-", and one LUN per
# LUNSPEC, "SIZE", "SIZE:ro" or "SIZE:thin", each backed by a new sparse
# file. ":thin" asks tgt for UNMAP (thin_provisioning=1), which iser-target
# offers on every file-backed LUN anyway. Sets
# url[NAME] (without a LUN), back[NAME,i] (the backing file of the i-th
# LUN) and lun[NAME,i] (its LUN number: tgt's LUN 0 is its controller).
ml_start() {
  local name=$1 kind=$2 iqn=$3 chap=$4 i=0 spec
  shift 4
  t_kind[$name]=$kind t_iqn[$name]=$iqn t_chap[$name]=$chap t_specs[$name]="$*"
  for spec in "$@"; do
    back[$name,$i]=$dir/$name-lun$i.img
    truncate -s "${spec%%:*}" "${back[$name,$i]}"
    lun[$name,$i]=$i
    [ "$kind" = tgt ] && lun[$name,$i]=$((i + 1))
    i=$((i + 1))
  done
  t_port[$name]=$(ml_port) || exit 1
  ml_names+=("$name")
  url[$name]=iscsi://127.0.0.1:${t_port[$name]}/$iqn
  [ "$kind" = iser-soft ] && url[$name]=iser://127.0.0.1:${t_port[$name]}/$iqn
  ml_launch "$name" || {
    echo "Bail out! $kind target $name did not start"
    tail -20 "${t_log[$name]}"
    exit 1
  }
}

ml_launch() { # NAME
  t_log[$1]=$dir/$1.log
  ml_fresh_log "$1"
  if [ "${t_kind[$1]}" = tgt ]; then
    ml_launch_tgt "$1"
  else
    ml_launch_iser "$1"
  fi
}

# ml_fresh_log NAME: an empty log for a new start, so that a "listening"
# line of the last one is not taken for this one; the old one is kept.
ml_fresh_log() {
  [ -s "${t_log[$1]}" ] && cat "${t_log[$1]}" >>"$dir/$1.old.log"
  : >"${t_log[$1]}"
}

ml_launch_iser() { # NAME
  local n=$1 conf=$dir/$1.conf i=0 spec portal=127.0.0.1:${t_port[$1]} dbg=()
  [ "${t_kind[$n]}" = iser-soft ] && portal=iser:$portal
  {
    printf '[global]\nportal = %s\n' "$portal"
    # fabric auto falls back to soft (and says so) where there is no RDMA
    # device, as on the hosts this runs on; elsewhere soft is asked for.
    [ "${t_kind[$n]}" = iser-soft ] && ml_rdma_devices && printf 'fabric = soft\n'
    printf '[target %s]\n' "${t_iqn[$n]}"
    [ "${t_chap[$n]}" = - ] || echo "chap = ${t_chap[$n]%%:*} ${t_chap[$n]#*:}"
    for spec in ${t_specs[$n]}; do
      printf '[lun %s]\npath = %s\n' "$i" "${back[$n,$i]}"
      [ "${spec#*:}" = ro ] && echo "read-only = yes"
      i=$((i + 1))
    done
  } >"$conf"
  # Over iSER with -d: the login keys are logged (a few lines a login).
  [ "${t_kind[$n]}" = iser-soft ] && dbg=(-d)
  # After a SIGKILL the port may take a moment to be ours again.
  for _ in $(seq 50); do
    "$tbin" -c "$conf" "${dbg[@]}" >>"${t_log[$n]}" 2>&1 &
    t_pid[$n]=$!
    for _ in $(seq 100); do
      grep -q "listening on $portal " "${t_log[$n]}" && return 0
      ml_running "${t_pid[$n]}" || break
      sleep 0.05
    done
    ml_wait "${t_pid[$n]}" 1 >/dev/null 2>&1
    sleep 0.1
    ml_fresh_log "$n"
  done
  t_pid[$n]=
  return 1
}

# tgtd in the foreground on its own control port (/var/run/tgtd/socket.N),
# configured with tgtadm as bench/target-tcp does it.
ml_launch_tgt() { # NAME
  local n=$1 ctl=${t_port[$1]} i=0 spec t
  mkdir -p /var/run/tgtd
  tgtd -f -C "$ctl" --iscsi "portal=127.0.0.1:${t_port[$n]}" >>"${t_log[$n]}" 2>&1 &
  t_pid[$n]=$!
  for _ in $(seq 100); do
    tgtadm -C "$ctl" --op show --mode sys >/dev/null 2>&1 && break
    ml_running "${t_pid[$n]}" || return 1
    sleep 0.05
  done
  t="tgtadm -C $ctl --lld iscsi"
  $t --op new --mode target --tid 1 -T "${t_iqn[$n]}" || return 1
  for spec in ${t_specs[$n]}; do
    $t --op new --mode logicalunit --tid 1 --lun "${lun[$n,$i]}" -b "${back[$n,$i]}" || return 1
    if [ "${spec#*:}" = ro ]; then
      $t --op update --mode logicalunit --tid 1 --lun "${lun[$n,$i]}" --params readonly=1 ||
        return 1
    elif [ "${spec#*:}" = thin ]; then
      $t --op update --mode logicalunit --tid 1 --lun "${lun[$n,$i]}" \
        --params thin_provisioning=1 || return 1
    fi
    i=$((i + 1))
  done
  if [ "${t_chap[$n]}" != - ]; then
    $t --op new --mode account --user "${t_chap[$n]%%:*}" --password "${t_chap[$n]#*:}" &&
      $t --op bind --mode account --tid 1 --user "${t_chap[$n]%%:*}" || return 1
  fi
  $t --op bind --mode target --tid 1 -I ALL || return 1
  for _ in $(seq 100); do
    [ -n "$(ss -Htln "sport = :${t_port[$n]}")" ] && return 0
    sleep 0.05
  done
  return 1
}

# ml_stop NAME: iser-target gets SIGTERM (and 5 s), tgtd ignores it (tgt's
# signal_catch), so it gets SIGKILL; its control socket goes too.
ml_stop() {
  local n=$1
  [ -n "${t_pid[$n]:-}" ] || return 0
  if [ "${t_kind[$n]}" != tgt ]; then
    ml_running "${t_pid[$n]}" && kill -TERM "${t_pid[$n]}"
    ml_wait "${t_pid[$n]}" 5 >/dev/null 2>&1
  else
    ml_running "${t_pid[$n]}" && kill -KILL "${t_pid[$n]}"
    wait "${t_pid[$n]}" 2>/dev/null
    rm -f "/var/run/tgtd/socket.${t_port[$n]}" "/var/run/tgtd/socket.${t_port[$n]}.lock"
  fi
  t_pid[$n]=
}

# ml_kill9 NAME: the target dies at once, as in a crash.
ml_kill9() {
  local n=$1
  ml_running "${t_pid[$n]}" && kill -KILL "${t_pid[$n]}"
  wait "${t_pid[$n]}" 2>/dev/null
  t_pid[$n]=
  [ "${t_kind[$n]}" != tgt ] || rm -f "/var/run/tgtd/socket.${t_port[$n]}"*
}

# ml_restart NAME: the same target on the same port and backing files.
ml_restart() {
  ml_launch "$1" || {
    echo "Bail out! ${t_kind[$1]} target $1 did not restart"
    tail -20 "${t_log[$1]}"
    exit 1
  }
}

# ml_mount MNT URL [OPTIONS]: iser-mount -f in the background; returns 0
# once MNT is a mount point, 1 (with its output) if iser-mount gave up.
ml_mount() {
  local m=$1 u=$2 o=${3:-} out
  mkdir -p "$m"
  if [ "$ml_uring" = 1 ] && [[ $u == iser://* ]] && [[ ,$o, != *,no_uring,* ]]; then
    o=${o:+$o,}uring
  fi
  # appended to, not emptied: a sanitizer report of an earlier mount stays
  out=$dir/mount-$(basename "$m").out
  echo "iser-mount -f ${o:+-o $o} $u $m" >>"$out"
  ml_mnts+=("$m")
  "$mbin" -f ${o:+-o "$o"} "$u" "$m" >>"$out" 2>&1 &
  mpid[$m]=$!
  for _ in $(seq 300); do
    mountpoint -q "$m" && return 0
    ml_running "${mpid[$m]}" || break
    sleep 0.05
  done
  echo "# iser-mount $u $m did not mount; its output:"
  tail -20 "$out" | sed 's/^/#   /'
  return 1
}

# ml_unmount MNT fusermount|lazy|term: unmount with fusermount3 -u
# (retried while the file system is busy), with fusermount3 -uz, or with
# SIGTERM to iser-mount; returns iser-mount's exit status (137: it had to
# be killed after 30 s).
ml_unmount() {
  local m=$1 p=${mpid[$1]}
  case $2 in
  term) ml_running "$p" && kill -TERM "$p" ;;
  lazy) fusermount3 -uz "$m" ;;
  *)
    for _ in $(seq 200); do
      fusermount3 -u "$m" 2>/dev/null && break
      sleep 0.05
    done
    ;;
  esac
  ml_wait "$p" 30
}

# ml_kill_daemon MNT: an iser-mount that went to the background for MNT
# (so not our child) is found by its argument, which is unique to us.
ml_kill_daemon() {
  local m=$1 p
  for p in $(pgrep -f -- "$m\$" 2>/dev/null); do
    [ "$p" = $$ ] && continue
    tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "$m" || continue
    echo "# killing iser-mount daemon $p of $m"
    kill -KILL "$p" 2>/dev/null
  done
}

# ml_daemon_gone MNT SECONDS: no process holds MNT as its argument.
ml_daemon_gone() {
  local p
  for _ in $(seq $(($2 * 10))); do
    p=$(pgrep -f -- "$1\$" 2>/dev/null | grep -vx $$)
    [ -z "$p" ] && return 0
    sleep 0.1
  done
  return 1
}

# ml_stat MNT LINE KEY: KEY's value on the line of MNT/.stats that begins
# with LINE (session, fuse, sched, or a LUN file's name).
ml_stat() { sed -n "s/^$2 .* $3=\([0-9]*\).*/\1/p" "$1/.stats"; }

# ml_same FILE BACKING: FILE (a LUN file, read 1 MiB at a time with
# O_DIRECT, so from the target) has the bytes of BACKING; cmp's message,
# if not, on stdout.
ml_same() {
  dd if="$1" bs=1M iflag=direct status=none | cmp - "$2" 2>&1
}

# ml_done: the verdict. An ASan, LSan or UBSan report in any log of
# iser-mount or iser-target is a failure too, whatever the exit codes.
ml_done() {
  local f
  for f in "$dir"/*.log "$dir"/*.out; do
    [ -f "$f" ] || continue
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"; then
      not_ok "sanitizer report in $(basename "$f"):"
      grep -A30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f" | head -60 |
        sed 's/^/#   /'
    fi
  done
  [ "$fails" -eq 0 ] && return 0
  echo "# $fails failure(s); the targets' and mounts' logs:"
  tail -n 30 "$dir"/*.log "$dir"/*.out 2>/dev/null | sed 's/^/#   /'
  return 1
}
