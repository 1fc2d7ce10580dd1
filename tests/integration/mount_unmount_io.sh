#!/bin/bash
# Unmount with writes in flight: four writers fill their own region of the
# LUN file, 128 KiB at a time, from files of random data, each logging a
# block once its write returned success. While they write, iser-mount
# gets SIGTERM (the writers use O_DIRECT), and in a second round the file
# system is unmounted with fusermount3 -u, which the kernel refuses while a
# file is open, and then -uz, which detaches it at once (buffered writes,
# so that the unmount has to flush them). Either way iser-mount must exit
# 0 and leave nothing mounted, and every write that a writer saw succeed
# must be in the target's backing file. Against iser-target and tgt.
#
# usage: mount_unmount_io.sh ISER-TARGET ISER-MOUNT
set -u
tbin=$1
mbin=$2
# shellcheck source-path=SCRIPTDIR source=mount_lib.sh
. "$(dirname "$0")/mount_lib.sh"
ml_init unmount-io

readonly WRITERS=4 REGION=32 BS=131072 # MiB per writer, bytes per write
readonly NB=$((REGION * 1048576 / BS))

# writer FILE PATTERN FIRST-BLOCK ACKS [DD-FLAG]: write block n of
# PATTERN to block FIRST+n of FILE, n = 0, 1, ..., each block only once,
# and log n when dd returns success; stop at the first failure.
# nocreat: once the mount is gone, the path must not become a new file.
writer() {
  local f=$1 p=$2 first=$3 acks=$4 flag=${5:-} n
  for ((n = 0; n < NB; n++)); do
    dd if="$p" of="$f" bs=$BS skip=$n seek=$((first + n)) count=1 conv=notrunc,nocreat \
      status=none ${flag:+"$flag"} 2>/dev/null || break
    echo "$n" >>"$acks"
  done
}

# check_writer KIND ROUND W: writer W's log is 0..K-1, and the pattern's
# first K blocks are in the backing file at W's region; adds K to acked.
check_writer() {
  local k=$1 r=$2 w=$3 acks=$dir/acks-$2-$3 n
  n=$(wc -l <"$acks")
  if [ "$n" -gt 0 ] && [ "$(tail -1 "$acks")" != $((n - 1)) ]; then
    not_ok "$k $r: writer $w's log is not 0..$((n - 1))"
  elif [ "$n" -gt 0 ] &&
    ! cmp -s -n $((n * BS)) -i $((w * NB * BS)):0 "${back[$k,0]}" "$dir/pattern-$w"; then
    not_ok "$k $r: writer $w: of its $n acknowledged blocks, not all are on the target"
  else
    acked=$((acked + n))
    return 0
  fi
  return 1
}

# unmount_busy KIND MNT: fusermount3 -u, which the kernel refuses while a
# writer has the file open (EBUSY: then the writers must go on unharmed),
# then fusermount3 -uz, which detaches at once: iser-mount finishes what
# is in flight and exits when the last writer has closed the file.
unmount_busy() {
  local k=$1 m=$2 before
  before=$(cat "$dir"/acks-fusermount-* | wc -l)
  if fusermount3 -u "$m" 2>"$dir/fusermount.err"; then
    ok "$k fusermount: fusermount3 -u found the file closed between two writes"
    ml_wait "${mpid[$m]}" 30
    return
  fi
  sleep 0.2
  if [ "$(cat "$dir"/acks-fusermount-* | wc -l)" -gt "$before" ] && mountpoint -q "$m"; then
    ok "$k fusermount: fusermount3 -u refused ($(sed -n "1s/.*: //p" "$dir/fusermount.err")), the writers went on"
  else
    not_ok "$k fusermount: after a refused fusermount3 -u, the writers stopped"
  fi
  ml_unmount "$m" lazy
}

round() { # KIND term|fusermount
  local k=$1 r=$2 m=$dir/mnt-$1 f w rc running=0 acked=0 bad=0 n flag=oflag=direct
  local -a wp=()
  [ "$r" = fusermount ] && flag= # buffered
  ml_mount "$m" "${url[$k]}/${lun[$k,0]}" || {
    not_ok "$k $r: mount"
    return
  }
  f=$m/lun${lun[$k,0]}
  for ((w = 0; w < WRITERS; w++)); do
    head -c $((REGION << 20)) /dev/urandom >"$dir/pattern-$w"
    : >"$dir/acks-$r-$w"
  done
  for ((w = 0; w < WRITERS; w++)); do
    writer "$f" "$dir/pattern-$w" $((w * NB)) "$dir/acks-$r-$w" "$flag" &
    wp+=($!)
    ml_pids+=($!)
  done
  # Let every writer get going, then pull the file system from under them.
  for _ in $(seq 200); do
    n=0
    for ((w = 0; w < WRITERS; w++)); do
      [ "$(wc -l <"$dir/acks-$r-$w")" -ge 8 ] && n=$((n + 1))
    done
    [ $n -eq $WRITERS ] && break
    sleep 0.02
  done
  for w in "${wp[@]}"; do ml_running "$w" && running=$((running + 1)); done
  if [ "$r" = term ]; then
    ml_unmount "$m" term
    rc=$?
  else
    unmount_busy "$k" "$m"
    rc=$?
  fi
  for w in "${wp[@]}"; do ml_wait "$w" 20 >/dev/null; done
  if [ $running -eq 0 ]; then
    not_ok "$k $r: the writers were done before the unmount; make REGION larger"
  fi
  if [ $rc -eq 0 ] && ! mountpoint -q "$m"; then
    ok "$k $r: iser-mount exited 0 with $running writers busy, nothing left mounted"
  else
    not_ok "$k $r: iser-mount exited $rc; mounted: $(mountpoint -q "$m" && echo yes || echo no)"
  fi
  for ((w = 0; w < WRITERS; w++)); do
    check_writer "$k" "$r" $w || bad=1
  done
  [ $bad -eq 0 ] && ok "$k $r: all $acked acknowledged 128 KiB writes are in the backing file"
}

for k in $kinds; do
  ml_start "$k" "$k" "$iqn_base:unmount-$k" - $((WRITERS * REGION))M
  round "$k" term
  round "$k" fusermount
  ml_stop "$k"
done
ml_done
