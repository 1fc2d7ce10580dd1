#!/bin/bash
# The LUN file's semantics through a real FUSE mount, as the kernel passes
# them on: reads and writes of odd sizes at odd offsets; a read that
# reaches the end is short, one at the end reads nothing; a write at or
# past the end fails with ENOSPC and changes nothing; writes of parts of
# blocks, many at once into the same blocks, each a read-modify-write, all
# land; fsync sends SYNCHRONIZE CACHE;
# fallocate(PUNCH_HOLE) sends UNMAP and the range reads back as zeros on
# the target; on a LUN without UNMAP (tgt without thin provisioning) it
# fails with EOPNOTSUPP, as does any other fallocate mode. Each checked
# on the target's backing file and in the mount's .stats counters. And
# iser-target's SIGUSR1 line: over iSER, the small writes' data went to
# the disk from the receive buffer it came in.
# Against iser-target (TCP and iSER) and tgt.
#
# usage: mount_file_ops.sh ISER-TARGET ISER-MOUNT
set -u
tbin=$1
mbin=$2
# shellcheck source-path=SCRIPTDIR source=mount_lib.sh
. "$(dirname "$0")/mount_lib.sh"
ml_need fallocate util-linux
ml_need fio fio
ml_init fileops

readonly SIZE=$((16 << 20))

# at BACKING OFF LEN: LEN bytes of the backing file from OFF, on stdout.
at() { tail -c +$(($2 + 1)) "$1" | head -c "$3"; }

odd_io() { # KIND MNT
  local k=$1 f=$2/lun${lun[$1,0]} b=${back[$1,0]} off=$((3 * 1048576 + 777)) n=70001
  head -c $n /dev/urandom >"$dir/odd"
  if dd if="$dir/odd" of="$f" bs=$n seek=$off oflag=seek_bytes conv=notrunc,nocreat \
    status=none 2>"$dir/dd.err" && cmp -s "$dir/odd" <(at "$b" $off $n) &&
    cmp -s "$dir/odd" <(dd if="$f" bs=$n skip=$off iflag=skip_bytes,fullblock count=1 \
      status=none); then
    ok "$k: $n bytes written at $off land there on the target and read back"
  else
    not_ok "$k: $n bytes at $off: $(cat "$dir/dd.err")"
  fi
}

ends() { # KIND MNT
  local k=$1 f=$2/lun${lun[$1,0]} b=${back[$1,0]} got
  got=$(dd if="$f" bs=16384 skip=$((SIZE - 4096)) count=1 iflag=direct,skip_bytes status=none |
    wc -c)
  if [ "$got" = 4096 ]; then
    ok "$k: a 16 KiB read 4 KiB before the end returns 4 KiB"
  else
    not_ok "$k: a 16 KiB read 4 KiB before the end returned $got bytes"
  fi
  got=$(dd if="$f" bs=4096 skip=$((SIZE / 4096)) count=1 status=none | wc -c)
  if [ "$got" = 0 ]; then
    ok "$k: a read at the end returns nothing"
  else
    not_ok "$k: a read at the end returned $got bytes"
  fi
  cp "$b" "$dir/before"
  if dd if=/dev/urandom of="$f" bs=4096 seek=$((SIZE / 4096)) count=1 conv=notrunc,nocreat \
    oflag=direct status=none 2>"$dir/dd.err"; then
    not_ok "$k: a write at the end succeeded"
  elif grep -q 'No space left on device' "$dir/dd.err"; then
    ok "$k: a write at the end: ENOSPC"
  else
    not_ok "$k: a write at the end failed, but not with ENOSPC: $(cat "$dir/dd.err")"
  fi
  if dd if=/dev/urandom of="$f" bs=512 seek=$((SIZE / 512 + 100)) count=1 conv=notrunc,nocreat \
    status=none 2>"$dir/dd.err"; then
    not_ok "$k: a write past the end succeeded"
  elif grep -q 'No space left on device' "$dir/dd.err"; then
    ok "$k: a write past the end: ENOSPC"
  else
    not_ok "$k: a write past the end failed, but not with ENOSPC: $(cat "$dir/dd.err")"
  fi
  if cmp -s "$b" "$dir/before" && [ "$(stat -c %s "$f")" = $SIZE ]; then
    ok "$k: the refused writes changed nothing, the size stays $SIZE"
  else
    not_ok "$k: after the refused writes: size $(stat -c %s "$f"), backing file changed?"
  fi
}

# sub_block KIND MNT: fio writes 100-byte pieces, 16 at a time (libaio:
# the kernel passes them on at once, where synchronous writes to one file
# would be serialised by its lock), so that most share a 512-byte block
# with another in flight, and each is a read-modify-write of one or two
# blocks; then reads every piece back and checks its CRC32C. A lost
# update (two read-modify-writes of a block crossing) leaves a piece
# without its header. The pieces must be on the target too.
sub_block() {
  local k=$1 m=$2 f=$2/lun${lun[$1,0]} b=${back[$1,0]} w0 w1 r0 r1 rc off=1000000 n=256000
  w0=$(ml_stat "$m" "lun${lun[$k,0]}" waits)
  r0=$(ml_stat "$m" "lun${lun[$k,0]}" rmw)
  fio --name=sub --filename="$f" --rw=write --bs=100 --offset=$off --size=$n --direct=1 \
    --ioengine=libaio --iodepth=16 --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0 \
    --randseed=3 >"$dir/fio-sub.out" 2>&1
  rc=$?
  w1=$(ml_stat "$m" "lun${lun[$k,0]}" waits)
  r1=$(ml_stat "$m" "lun${lun[$k,0]}" rmw)
  if [ $rc -eq 0 ] && grep -q 'err= 0' "$dir/fio-sub.out" &&
    cmp -s <(at "$b" $off $n) <(dd if="$f" bs=$n skip=$off count=1 \
      iflag=skip_bytes,fullblock status=none) &&
    [ $((r1 - r0)) -ge $((n / 100)) ] && [ "$w1" -gt "$w0" ]; then
    ok "$k: $((n / 100)) writes of 100 bytes, 16 at a time: all verify, on the target too ($((r1 - r0)) read-modify-writes, $((w1 - w0)) waited for a block in use)"
  else
    not_ok "$k: 100-byte writes 16 at a time: fio exit $rc, rmw $r0 -> $r1, waits $w0 -> $w1"
    grep -E 'err=|verify' "$dir/fio-sub.out" | head -5 | sed 's/^/#   /'
  fi
}

# writers KIND MNT: four processes writing one LUN file with synchronous
# O_DIRECT writes reach iser-mount at once (FOPEN_PARALLEL_DIRECT_WRITES in
# its OPEN replies; without it the kernel takes the file's lock for each
# write, and at most one is in flight). Run before anything else puts
# more than one request in flight, so that the high-water mark is theirs.
writers() {
  local k=$1 m=$2 f=$2/lun${lun[$1,0]} i0 i1
  i0=$(ml_stat "$m" "lun${lun[$k,0]}" inflight_max)
  if ! fio --name=wr --filename="$f" --rw=randwrite --bs=4k --size=4M --offset_increment=4M \
    --numjobs=4 --direct=1 --ioengine=psync --time_based --runtime=1 >"$dir/fio-wr.out" 2>&1; then
    not_ok "$k: 4 synchronous writers: $(grep -m1 -i error "$dir/fio-wr.out")"
    return
  fi
  i1=$(ml_stat "$m" "lun${lun[$k,0]}" inflight_max)
  if [ "$i0" -le 1 ] && [ "$i1" -ge 3 ]; then
    ok "$k: 4 processes with synchronous O_DIRECT writes: $i1 writes in flight at once"
  else
    not_ok "$k: 4 synchronous writers: in flight at most $i0 before, $i1 after"
  fi
}

# parallel KIND MNT: 32 reads in flight from fio (libaio) are 32 FUSE
# requests being served at once and as many SCSI commands at the target:
# the answers are asynchronous, nothing waits in between.
parallel() {
  local k=$1 m=$2 f=$2/lun${lun[$1,0]} rq sc
  if ! fio --name=par --filename="$f" --rw=randread --bs=4k --size=8M --direct=1 \
    --ioengine=libaio --iodepth=32 --iodepth_batch_submit=32 --time_based --runtime=1 \
    >"$dir/fio-par.out" 2>&1; then
    not_ok "$k: fio at queue depth 32: $(grep -m1 -i error "$dir/fio-par.out")"
    return
  fi
  rq=$(ml_stat "$m" "lun${lun[$k,0]}" inflight_max)
  sc=$(ml_stat "$m" session sent_max)
  if [ "$rq" -ge 16 ] && [ "$sc" -ge 16 ]; then
    ok "$k: at queue depth 32, up to $rq FUSE requests in flight, $sc SCSI commands at the target"
  else
    not_ok "$k: at queue depth 32, only $rq FUSE requests and $sc commands at once"
  fi
}

# target_stats KIND: iser-target's SIGUSR1 line for our connection. Over
# iSER it counts the writes whose data (all of it immediate: these small
# writes) went to the disk from the receive buffer, with no copy.
target_stats() {
  local k=$1 l=${t_log[$1]} line
  kill -USR1 "${t_pid[$k]}"
  for _ in $(seq 50); do
    line=$(grep -m1 ': stats ' "$l") && break
    sleep 0.1
  done
  if [ "$k" = iser-soft ] && [[ "$line" =~ iser\ commands=[1-9].*notifications_per_cmd=.*\ in_place=([0-9]+) ]] &&
    [ "${BASH_REMATCH[1]}" -ge 1000 ]; then
    ok "$k: SIGUSR1: ${line#*: stats }"
  elif [ "$k" = iser ] && [[ "$line" =~ tcp\ commands=[1-9] ]]; then
    ok "$k: SIGUSR1: ${line#*: stats }"
  else
    not_ok "$k: SIGUSR1: no line, or not the counters asked for: ${line:-nothing}"
  fi
  backing_stats "$k"
}

# backing_stats KIND: iser-target's SIGUSR1 line for its backing stores.
# The LUN files live in $dir: on ext4, xfs or btrfs (RWF_NOWAIT reads)
# the reads of data just written came from the page cache without
# io_uring; on tmpfs every read and write ran synchronously.
backing_stats() {
  local k=$1 line fs
  line=$(grep -m1 ': stats backing store: ' "${t_log[$k]}")
  fs=$(stat -f -c %T "$dir")
  if [[ "$line" =~ io_uring\ .*inline_reads=([0-9]+).*memory_ops=([0-9]+) ]]; then
    case "$fs/${BASH_REMATCH[1]}/${BASH_REMATCH[2]}" in
    ext2/ext3/[1-9]*/0 | xfs/[1-9]*/0 | btrfs/[1-9]*/0 | tmpfs/0/[1-9]*)
      ok "$k: backing store on $fs: ${line#*: stats backing store: }" ;;
    ext2/ext3/* | xfs/* | btrfs/* | tmpfs/*)
      not_ok "$k: backing store on $fs, not the path expected: ${line#*: stats backing store: }" ;;
    *) ok "$k: backing store on $fs (not checked): ${line#*: stats backing store: }" ;;
    esac
  elif [[ "$line" == *': sync '* ]]; then
    ok "$k: backing store: synchronous (no io_uring here): ${line#*: stats backing store: }"
  else
    not_ok "$k: SIGUSR1: no backing store line: ${line:-nothing}"
  fi
}

# fallback KIND: with no RDMA device, fabric auto (the default of both
# programs) uses the soft provider and says so in the log.
fallback() {
  local k=$1 which
  for which in "${t_log[$k]}" "$dir/mount-mnt-$k.out"; do
    if grep -q 'fabric auto: using the soft RDMA provider (no RDMA device found)' "$which"; then
      ok "$k: $(basename "$which"): fabric auto: soft, said in the log"
    else
      not_ok "$k: $(basename "$which") does not say that fabric auto fell back to soft"
    fi
  done
}

# unexpected KIND: RFC 7145 §6.7, each side declares the unexpected PDUs
# it has receive buffers for: iser-mount the 16 its ring holds beyond one
# per command, iser-target 256 (half its receives).
unexpected() {
  local l=${t_log[$1]}
  if grep -q 'login .* < .*MaxOutstandingUnexpectedPDUs=16 ' "$l" &&
    grep -q 'login .* > .*MaxOutstandingUnexpectedPDUs=256 ' "$l"; then
    ok "$1: MaxOutstandingUnexpectedPDUs declared both ways: 16 by iser-mount, 256 by iser-target"
  else
    not_ok "$1: MaxOutstandingUnexpectedPDUs not declared both ways: $(grep -o 'MaxOutstandingUnexpectedPDUs=[0-9]*' "$l" | tr '\n' ' ')"
  fi
}

syncs() { # KIND MNT
  local k=$1 m=$2 f=$2/lun${lun[$1,0]} s0 s1
  s0=$(ml_stat "$m" "lun${lun[$k,0]}" syncs)
  if dd if=/dev/urandom of="$f" bs=64k count=1 conv=notrunc,nocreat,fsync status=none &&
    s1=$(ml_stat "$m" "lun${lun[$k,0]}" syncs) && [ "$s1" -gt "$s0" ]; then
    ok "$k: fsync: SYNCHRONIZE CACHE answered GOOD (syncs $s0 -> $s1)"
  else
    not_ok "$k: fsync: syncs $s0 -> ${s1:-?}"
  fi
}

# punch KIND MNT I: on LUN I, which has UNMAP, 1 MiB of data punched out
# of the middle of 3 MiB reads as zeros, there and on the target, with
# the data around it untouched.
punch() {
  local k=$1 m=$2 i=$3 f=$2/lun${lun[$1,$3]} b=${back[$1,$3]} u0 u1
  dd if=/dev/urandom of="$f" bs=1M seek=4 count=3 conv=notrunc,nocreat oflag=direct status=none
  cp "$b" "$dir/before"
  u0=$(ml_stat "$m" "lun${lun[$k,$i]}" unmaps)
  if ! fallocate --punch-hole --keep-size -o 5M -l 1M "$f" 2>"$dir/fa.err"; then
    not_ok "$k: fallocate --punch-hole on lun${lun[$k,$i]}: $(cat "$dir/fa.err")"
    return
  fi
  u1=$(ml_stat "$m" "lun${lun[$k,$i]}" unmaps)
  if cmp -s <(at "$b" $((5 << 20)) $((1 << 20))) <(head -c 1M /dev/zero) &&
    cmp -s <(dd if="$f" bs=1M skip=5 count=1 iflag=direct status=none) <(head -c 1M /dev/zero) &&
    cmp -s <(at "$b" $((4 << 20)) $((1 << 20))) <(at "$dir/before" $((4 << 20)) $((1 << 20))) &&
    cmp -s <(at "$b" $((6 << 20)) $((1 << 20))) <(at "$dir/before" $((6 << 20)) $((1 << 20))) &&
    [ "$u1" -gt "$u0" ]; then
    ok "$k: lun${lun[$k,$i]}: punching 1 MiB: UNMAP (unmaps $u0 -> $u1), zeros on the target, the rest kept"
  else
    not_ok "$k: punching 1 MiB: unmaps $u0 -> $u1, or the data is not as it should be"
  fi
}

# no_punch KIND NAME MNT LUNFILE [FALLOCATE-OPTIONS]: fallocate fails
# with EOPNOTSUPP, and it was iser-mount that said so (its punches counter
# moved). Once told EOPNOTSUPP, the kernel sends no fallocate to that
# mount again: this must be the last fallocate of a mount.
no_punch() {
  local k=$1 p0 p1
  p0=$(ml_stat "$3" "$4" punches)
  if fallocate "${@:5}" -o 1M -l 1M "$3/$4" 2>"$dir/fa.err"; then
    not_ok "$k: $2: fallocate succeeded"
  elif ! grep -qE 'Operation not supported|mode is unsupported' "$dir/fa.err"; then
    not_ok "$k: $2: not EOPNOTSUPP: $(cat "$dir/fa.err")"
  elif p1=$(ml_stat "$3" "$4" punches) && [ "$p1" -gt "$p0" ]; then
    ok "$k: $2: EOPNOTSUPP from iser-mount (punches $p0 -> $p1)"
  elif [ -z "${*:5}" ]; then
    # A mode other than a hole: refused by us, before the count.
    ok "$k: $2: EOPNOTSUPP"
  else
    not_ok "$k: $2: EOPNOTSUPP, but iser-mount never saw the request"
  fi
}

for k in $kinds; do
  # LUN 0 with UNMAP; LUN 1 without on tgt (iser-target always has it)
  ml_start "$k" "$k" "$iqn_base:fileops-$k" - $SIZE:thin $SIZE
  m=$dir/mnt-$k
  if ml_mount "$m" "${url[$k]}"; then
    odd_io "$k" "$m"
    ends "$k" "$m"
    writers "$k" "$m"
    sub_block "$k" "$m"
    parallel "$k" "$m"
    [ "$k" = tgt ] || target_stats "$k"
    [ "$k" = iser-soft ] && ! ml_rdma_devices && fallback "$k"
    [ "$k" = iser-soft ] && unexpected "$k"
    syncs "$k" "$m"
    punch "$k" "$m" 0
    [ "$k" = tgt ] || punch "$k" "$m" 1
    no_punch "$k" "fallocate of space (no PUNCH_HOLE)" "$m" "lun${lun[$k,0]}"
    ml_unmount "$m" fusermount || not_ok "$k: fusermount3 -u: iser-mount exited $?"
  else
    not_ok "$k: mount"
  fi
  if [ "$k" = tgt ] && ml_mount "$m" "${url[$k]}/${lun[$k,1]}"; then
    no_punch "$k" "a hole in a LUN without UNMAP" "$m" "lun${lun[$k,1]}" --punch-hole --keep-size
    ml_unmount "$m" fusermount || not_ok "$k: fusermount3 -u: iser-mount exited $?"
  fi
  ml_stop "$k"
done
ml_done
