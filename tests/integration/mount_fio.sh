#!/bin/bash
# fio through iser-mount: four jobs at once, each in its own region of the
# LUN file, write random blocks of random sizes (512 B to 256 KiB, random
# offsets, O_DIRECT, libaio) with a CRC32C in each, then read them all back
# and check them. Then the data must be where the target keeps it: the LUN
# file read through the mount is byte for byte the target's backing file,
# and after an unmount and a new mount, fio's verify-only pass finds every
# block intact. Against iser-target and against tgt. Where the kernel has
# FUSE over io_uring (mount_lib.sh), one of the two mounts takes its
# requests over it and the other from /dev/fuse.
#
# usage: mount_fio.sh ISER-TARGET ISER-MOUNT
set -u
tbin=$1
mbin=$2
# shellcheck source-path=SCRIPTDIR source=mount_lib.sh
. "$(dirname "$0")/mount_lib.sh"
ml_need fio fio
ml_init fio

readonly JOBS=4 REGION=64 # MiB per job
# The same job both times: fio replays the same random offsets and block
# sizes from its seed, so --verify_only finds each block where it wrote it.
fio_job() { # FILE [EXTRA...]
  local f=$1
  shift
  fio --name=verify --filename="$f" --thread --numjobs=$JOBS --group_reporting=0 \
    --size=$((REGION / 2))M --offset_increment=${REGION}M --rw=randwrite \
    --bsrange=512-256k --direct=1 --ioengine=libaio --iodepth=16 \
    --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 --randseed=4242 "$@"
}

# fio_clean NAME RC OUT: exit 0, every job with err=0, no verify complaint.
fio_clean() {
  local name=$1 rc=$2 out=$3 good
  good=$(grep -c 'err= 0' "$out")
  if [ "$rc" -eq 0 ] && [ "$good" -eq $JOBS ] &&
    ! grep -qiE 'verify: bad|bad magic|verify failed|crc32c.*(mismatch|fail)' "$out"; then
    ok "$name: $(grep -E '^ *(WRITE|READ):' "$out" | sed 's/^ *//' | tr '\n' ' ')"
  else
    not_ok "$name: fio exit $rc, $good of $JOBS jobs with err=0"
    grep -iE 'err=|verify|error|bad' "$out" | head -20 | sed 's/^/#   /'
  fi
}

# uring_check KIND MNT RING: with RING 1 (the mount has -o uring), the
# requests came over io_uring where the kernel has it, and no write's
# data was copied on the way; over iSER the ring's entries were
# registered and the target moved the data straight to and from them
# (fio's blocks are whole 512-byte blocks): no command bounced through a
# buffer of the session during fio (bounced0: before it; the probe's
# commands at mount time do). Else, and without the kernel's, from
# /dev/fuse alone.
uring_check() {
  local n e b c r
  n=$(ml_stat "$2" fuse_uring requests)
  e=$(ml_stat "$2" fuse_uring entries)
  if [ "$3" = 1 ] && [ "$ml_uring" = 1 ]; then
    b=$(ml_stat "$2" session bounced)
    b=$((${b:-0} - ${bounced0:-0}))
    c=$(ml_stat "$2" fuse write_copies)
    r=$(ml_stat "$2" fuse_uring registered)
    if [ "${n:-0}" -le 1000 ]; then
      not_ok "$1: -o uring: ${n:-no} FUSE requests over io_uring"
    elif [ "$c" != 0 ] || [ "$b" != 0 ]; then
      not_ok "$1: -o uring: writes copied ${c:-?}, commands bounced $b"
    elif [ "${url[$1]#iser:}" != "${url[$1]}" ] && [ "${r:-0}" -eq 0 ]; then
      not_ok "$1: -o uring over iSER: no ring entry registered"
    else
      ok "$1: $n FUSE requests came over io_uring ($e entries, ${r:-?} registered), no data copied"
    fi
  elif [ "$e" = 0 ] && [ "$n" = 0 ]; then
    ok "$1: FUSE requests from /dev/fuse alone"
  else
    not_ok "$1: from /dev/fuse: yet ring entries ${e:-?}, requests ${n:-?}"
  fi
}

run() { # KIND
  local k=$1 m=$dir/mnt-$1 f rc o
  ml_start "$k" "$k" "$iqn_base:fio-$k" - $((JOBS * REGION))M
  if ! ml_mount "$m" "${url[$k]}/${lun[$k,0]}"; then
    not_ok "$k: mount"
    return
  fi
  f=$m/lun${lun[$k,0]}
  if [ "$(stat -c %s "$f" 2>/dev/null)" = $((JOBS * REGION * 1048576)) ]; then
    ok "$k: $f is $((JOBS * REGION)) MiB, the LUN's capacity"
  else
    not_ok "$k: $f: size $(stat -c %s "$f" 2>&1), want $((JOBS * REGION)) MiB"
  fi
  bounced0=$(ml_stat "$m" session bounced)
  fio_job "$f" >"$dir/fio-$k.out" 2>&1
  fio_clean "$k: $JOBS fio jobs, random sizes and offsets, written and verified" $? \
    "$dir/fio-$k.out"
  # ml_mount gave the iser:// mount -o uring
  uring_check "$k" "$m" "$([ "$k" = iser-soft ] && echo 1)"
  if ml_same "$f" "${back[$k,0]}" >"$dir/cmp-$k.out"; then
    ok "$k: the LUN file reads back as the target's backing file"
  else
    not_ok "$k: the LUN file and the backing file differ: $(head -1 "$dir/cmp-$k.out")"
  fi
  ml_unmount "$m" fusermount
  rc=$?
  if [ $rc -eq 0 ]; then
    ok "$k: fusermount3 -u, iser-mount exited 0"
  else
    not_ok "$k: fusermount3 -u: iser-mount exited $rc"
  fi
  # Over iSER the second mount asks for MPA CRC32C on every frame; it
  # takes the other way for FUSE requests.
  o=uring
  [ "$k" = iser-soft ] && o=no_uring,mpa_crc
  if ! ml_mount "$m" "${url[$k]}/${lun[$k,0]}" "$o"; then
    not_ok "$k: mount again"
    return
  fi
  bounced0=$(ml_stat "$m" session bounced)
  fio_job "$f" --verify_only >"$dir/fio-$k-again.out" 2>&1
  fio_clean "$k: after a new mount (-o $o), every block verified again" $? \
    "$dir/fio-$k-again.out"
  uring_check "$k" "$m" "$([ "$k" != iser-soft ] && echo 1)"
  ml_unmount "$m" term
  rc=$?
  if [ $rc -eq 0 ]; then
    ok "$k: SIGTERM, iser-mount exited 0"
  else
    not_ok "$k: SIGTERM: iser-mount exited $rc"
  fi
  mountpoint -q "$m" && not_ok "$k: $m still mounted after SIGTERM"
  ml_stop "$k"
}

for k in $kinds; do run "$k"; done
ml_done
