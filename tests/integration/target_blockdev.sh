#!/bin/bash
# A LUN on a block device: a loop device over a file, served by
# iser-target. libiscsi (iscsi_copy) writes 4 MiB of random data and
# reads them back; once the target has stopped (it syncs its LUNs) the
# data is in the file under the loop device. The backing store must run
# the device as a disk, not as memory: its node lives on devtmpfs, whose
# statfs says tmpfs, and a LUN taken for memory is read and written with
# synchronous calls on the event loop. SIGUSR1's backing store line must
# show memory_ops=0, and reads served from the page cache (a block device
# takes RWF_NOWAIT reads).
#
# usage: target_blockdev.sh ISER-TARGET ISCSI-COPY|none
set -u
bin=$1
copy=${2:-none}
# shellcheck source-path=SCRIPTDIR source=target_lib.sh
. "$(dirname "$0")/target_lib.sh"
tl_init blockdev

[ -x "$copy" ] || skip "iscsi_copy not built (needs libiscsi-dev)"
[ "$(id -u)" = 0 ] || skip "not root: no loop device"
command -v losetup >/dev/null || skip "no losetup (util-linux)"
truncate -s 64M "$dir/back.img"
loopdev=$(losetup -f --show "$dir/back.img" 2>"$dir/losetup.err") ||
  skip "no loop device: $(cat "$dir/losetup.err")"
# shellcheck disable=SC2064 # the device is known now
trap "losetup -d $loopdev; tl_cleanup" EXIT

head -c 4M /dev/urandom >"$dir/data"
tl_lun=$loopdev tl_start 64M
if "$copy" put "$url" "$dir/data" >"$dir/put.out" 2>&1 &&
  "$copy" get "$url" "$dir/back" $((4 << 20)) >"$dir/get.out" 2>&1 &&
  cmp -s "$dir/data" "$dir/back"; then
  ok "$loopdev: 4 MiB written and read back by libiscsi"
else
  not_ok "$loopdev: libiscsi's copy: $(cat "$dir/put.out" "$dir/get.out")"
fi

n=$(grep -c 'stats backing store:' "$log")
kill -USR1 "$pid"
for _ in $(seq 50); do
  [ "$(grep -c 'stats backing store:' "$log")" -gt "$n" ] && break
  sleep 0.05
done
line=$(grep 'stats backing store:' "$log" | tail -1)
if [[ "$line" =~ io_uring\ .*inline_reads=([0-9]+).*memory_ops=([0-9]+) ]]; then
  if [ "${BASH_REMATCH[2]}" = 0 ] && [ "${BASH_REMATCH[1]}" -gt 0 ]; then
    ok "a disk, not memory: ${line#*: stats backing store: }"
  else
    not_ok "not run as a disk: ${line#*: stats backing store: }"
  fi
elif [[ "$line" == *': sync '* ]]; then
  ok "synchronous backing store (no io_uring here): ${line#*: stats backing store: }"
else
  not_ok "SIGUSR1: no backing store line: ${line:-nothing}"
fi

tl_stop
if cmp -s "$dir/data" <(head -c 4M "$dir/back.img"); then
  ok "the data is in the file under $loopdev"
else
  not_ok "the file under $loopdev does not hold the data written"
fi

[ "$fails" -eq 0 ]
