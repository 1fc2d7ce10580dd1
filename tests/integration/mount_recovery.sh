#!/bin/bash
# The target dies under load: fio writes random blocks with a CRC32C in
# each (rate-limited, so that the writing lasts about 5 s) through
# iser-mount; 1.5 s in, the target gets SIGKILL, and 2 s later it starts
# again on the same port with the same backing file. iser-mount must
# reconnect and reissue what had no answer, so that fio sees a delay, not
# an error: fio exits 0, and its read-back finds no bad block. Then again
# while a reader goes through the LUN file 1 MiB at a time: every chunk
# must come back as the target has it, none with an error. Lastly a mount
# with recovery_timeout=3: with the target gone, a read waits about 3 s
# and fails with EIO, later ones at once, a write too; once the target is
# back, the same mount reads the target's data again. Against iser-target
# and against tgt.
#
# usage: mount_recovery.sh ISER-TARGET ISER-MOUNT
set -u
tbin=$1
mbin=$2
# shellcheck source-path=SCRIPTDIR source=mount_lib.sh
. "$(dirname "$0")/mount_lib.sh"
ml_need fio fio
ml_init recovery

readonly JOBS=2 SIZE=48 RATE=12 # MiB per job, MiB/s per job while writing

# fio_start FILE OUT: the job, in the background; sets fpid. --thread, so
# that killing fio by its PID leaves no job process behind; the status
# line every 250 ms says which phase it is in ("[w(2)]", "[V(2)]").
fio_start() {
  fio --name=recover --filename="$1" --thread --numjobs=$JOBS --group_reporting=0 \
    --size=${SIZE}M --offset_increment=$((2 * SIZE))M --rw=randwrite --bsrange=4k-128k \
    --direct=1 --ioengine=libaio --iodepth=8 --rate=,${RATE}m \
    --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 --randseed=7 \
    --eta=always --eta-interval=250ms >"$2" 2>&1 &
  fpid=$!
  ml_pids+=("$fpid")
}

# phase OUT: the letters of fio's last status line ("w(2)", "V(2)"...).
phase() { tr '\r' '\n' <"$1" | sed -n 's/^Jobs: [^[]*\[\([^]]*\)\].*/\1/p' | tail -1; }

# reader FILE BACKING: read the LUN file 1 MiB at a time (O_DIRECT, so
# from the target), paced to last about 5 s, and compare each chunk with
# the backing file; one line per chunk: "ok N", "bad N" or "error N".
reader() {
  local i n=$(($(stat -c %s "$2") >> 20))
  for ((i = 0; i < n; i++)); do
    if ! dd if="$1" of="$dir/chunk" bs=1M skip=$i count=1 iflag=direct status=none; then
      echo "error $i"
    elif cmp -s -n 1048576 -i 0:$((i << 20)) "$dir/chunk" "$2"; then
      echo "ok $i"
    else
      echo "bad $i"
    fi
    sleep 0.01
  done
}

# outage KIND WHEN OUT: SIGKILL the target 1.5 s into fio's writing
# (early) or into the reader's reading (late), start it again 2 s later.
outage() {
  local k=$1 when=$2 out=$3
  for _ in $(seq 300); do
    [ "$when" = late ] && [ -s "$out" ] && break
    [[ "$(phase "$out")" == w* ]] && break
    ml_running "$fpid" || break
    sleep 0.05
  done
  sleep 1.5
  if ! ml_running "$fpid"; then
    not_ok "$k ($when): the I/O was over before the target was to die"
    return 1
  fi
  ml_kill9 "$k"
  sleep 2
  ml_restart "$k"
  return 0
}

check_fio() { # KIND WHEN OUT RC
  local k=$1 when=$2 out=$3 rc=$4 good
  good=$(grep -c 'err= 0' "$out")
  if [ "$rc" -eq 0 ] && [ "$good" -eq $JOBS ] &&
    ! grep -qiE 'verify: bad|bad magic|verify failed' "$out"; then
    ok "$k ($when): target killed and restarted mid-write; fio: no error, no bad block"
  else
    not_ok "$k ($when): fio exit $rc, $good of $JOBS jobs with err=0"
    grep -iE 'err=|verify|error|bad|timeout' "$out" | head -20 | sed 's/^/#   /'
  fi
}

# early KIND: fio writes and verifies across the outage.
early() {
  local k=$1 out=$dir/fio-$1.out
  fio_start "$dir/mnt-$k/lun${lun[$k,0]}" "$out"
  if outage "$k" early "$out"; then
    ml_wait "$fpid" 60
    check_fio "$k" early "$out" $?
  else
    ml_wait "$fpid" 60 >/dev/null
  fi
}

# late KIND: reads across the outage return the target's data.
late() {
  local k=$1 out=$dir/reader-$1.out n
  : >"$out"
  reader "$dir/mnt-$k/lun${lun[$k,0]}" "${back[$k,0]}" >"$out" 2>"$dir/reader-$k.err" &
  fpid=$!
  ml_pids+=("$fpid")
  outage "$k" late "$out" || return
  ml_wait "$fpid" 60 >/dev/null
  n=$(($(stat -c %s "${back[$k,0]}") >> 20))
  if [ "$(grep -c '^ok ' "$out")" -eq "$n" ]; then
    ok "$k (late): target killed and restarted mid-read; $n MiB read back, all as on the target"
  else
    not_ok "$k (late): of $n chunks, $(grep -c '^ok ' "$out") read back right:"
    grep -v '^ok ' "$out" | head -5 | sed 's/^/#   /'
    head -5 "$dir/reader-$k.err" | sed 's/^/#   /'
  fi
}

# after KIND WHEN: iser-mount is back on the target, and consistent.
after() {
  local k=$1 f=$dir/mnt-$1/lun${lun[$1,0]} n
  n=$(ml_stat "$dir/mnt-$k" session reconnects)
  if [ -n "$(ss -Htn state established "dport = :${t_port[$k]}")" ] && [ "${n:-0}" -ge 1 ]; then
    ok "$k ($2): iser-mount is logged in to the restarted target ($n reconnections in .stats)"
  else
    not_ok "$k ($2): no connection to the restarted target, or reconnects=${n:-?} in .stats"
  fi
  if ml_same "$f" "${back[$k,0]}" >"$dir/cmp.out"; then
    ok "$k ($2): the LUN file reads back as the target's backing file"
  else
    not_ok "$k ($2): LUN file and backing file differ: $(head -1 "$dir/cmp.out")"
  fi
}

# timed CMD...: run CMD, output to $dir/timed.err, its duration in ms in $ms.
timed() {
  local t0=$EPOCHREALTIME rc
  "$@" 2>"$dir/timed.err"
  rc=$?
  ms=$(((${EPOCHREALTIME/./} - ${t0/./}) / 1000))
  return $rc
}

# expiry KIND: recovery_timeout=3 gives up on the I/O, not on the target.
expiry() {
  local k=$1 m=$dir/exp-$1 f=$dir/exp-$1/lun${lun[$1,0]} ms i up=
  ml_mount "$m" "${url[$k]}/${lun[$k,0]}" recovery_timeout=3 || {
    not_ok "$k: mount with recovery_timeout=3"
    return
  }
  dd if="$f" of=/dev/null bs=4k count=1 iflag=direct status=none
  ml_kill9 "$k"
  if timed dd if="$f" of=/dev/null bs=4k count=1 iflag=direct status=none; then
    not_ok "$k: with the target gone, a read succeeded"
  elif ! grep -q 'Input/output error' "$dir/timed.err"; then
    not_ok "$k: with the target gone, a read failed, but not with EIO: $(cat "$dir/timed.err")"
  elif ((ms < 1500 || ms > 20000)); then
    not_ok "$k: with the target gone, a read failed after $ms ms, not about 3 s"
  else
    ok "$k: with the target gone, a read fails with EIO after $ms ms (recovery_timeout=3)"
  fi
  if ! timed dd if="$f" of=/dev/null bs=4k count=1 iflag=direct status=none &&
    grep -q 'Input/output error' "$dir/timed.err" && ((ms < 1000)) &&
    ! dd if=/dev/zero of="$f" bs=4k count=1 conv=notrunc,nocreat oflag=direct status=none \
      2>"$dir/dd.err" && grep -q 'Input/output error' "$dir/dd.err"; then
    ok "$k: after the timeout, a read fails with EIO at once ($ms ms), and a write too"
  else
    not_ok "$k: after the timeout: read in $ms ms: $(cat "$dir/timed.err"), write: $(cat "$dir/dd.err")"
  fi
  ml_restart "$k"
  for i in $(seq 100); do
    dd if="$f" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null && up=$i && break
    sleep 0.2
  done
  if [ -n "$up" ] && ml_same "$f" "${back[$k,0]}" >/dev/null && [ "$(ml_stat "$m" session reconnects)" -ge 1 ]; then
    ok "$k: the target back, the same mount reads its data again ($(ml_stat "$m" session reconnects) reconnection)"
  else
    not_ok "$k: the target back, but the mount does not read it (reconnects=$(ml_stat "$m" session reconnects))"
  fi
  ml_unmount "$m" term || not_ok "$k: SIGTERM: iser-mount exited $?"
}

for k in $kinds; do
  ml_start "$k" "$k" "$iqn_base:recovery-$k" - $((2 * JOBS * SIZE))M
  if ml_mount "$dir/mnt-$k" "${url[$k]}/${lun[$k,0]}" recovery_timeout=60; then
    early "$k"
    after "$k" early
    late "$k"
    after "$k" late
    ml_unmount "$dir/mnt-$k" term || not_ok "$k: SIGTERM: iser-mount exited $?"
  else
    not_ok "$k: mount"
  fi
  expiry "$k"
  ml_stop "$k"
done
ml_done
