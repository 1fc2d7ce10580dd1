#!/bin/bash
# The main job: iser-target serves a sparse LUN on loopback and iser-mount
# shows it as a file in a FUSE mount, over iSER on the soft RDMA provider
# (iWARP over TCP in user space: no RDMA in the kernel needed). Installs what it needs (Debian
# packages, through tests/deps.sh), builds in build-run/, and stays in the
# foreground: Ctrl-C (or SIGTERM to this script) unmounts and stops both.
#
# usage: bash run.sh [--size SIZE] [--dir DIR] [--port PORT]
#   --size  the LUN's size when its file is created (default 1G)
#   --dir   where the LUN file, the mount point and the logs live
#           (default /var/tmp/iserkit); the LUN file is kept between runs
#   --port  the portal on 127.0.0.1 (default 3260, or the next free one)
set -euo pipefail

size=1G
dir=/var/tmp/iserkit
port=
iqn=iqn.2026-11.org.iserkit:run
while (($#)); do
  case $1 in
  --size) size=$2; shift 2 ;;
  --dir) dir=$2; shift 2 ;;
  --port) port=$2; shift 2 ;;
  -h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

repo=$(cd "$(dirname "$0")" && pwd)
build=$repo/build-run
bash "$repo/tests/deps.sh"
[ -f "$build/build.ninja" ] || meson setup "$build" "$repo" --buildtype=release >/dev/null
ninja -C "$build" target/iser-target fuse/iser-mount >/dev/null

port_busy() { ss -Htln "sport = :$1" | grep -q .; }
if [ -z "$port" ]; then
  port=3260
  while port_busy "$port"; do port=$((port + 1)); done
elif port_busy "$port"; then
  echo "run.sh: port $port on this host is in use; pick another with --port" >&2
  exit 1
fi

mkdir -p "$dir/mnt"
mnt=$dir/mnt
if mountpoint -q "$mnt"; then
  echo "run.sh: $mnt is still mounted (an earlier run?): fusermount3 -u $mnt" >&2
  exit 1
fi
tpid=
mpid=
# Unmount (iser-mount flushes the LUN and logs out), then stop the target.
# Further Ctrl-Cs are ignored meanwhile: a stop cut in half would leave
# both running. A mount that does not finish in 30 s (its target gone, so
# its writes cannot be flushed) gets a second SIGTERM, which skips the wait.
stop() {
  trap '' INT TERM
  trap - EXIT
  echo
  echo "run.sh: stopping"
  if [ -n "$mpid" ]; then
    fusermount3 -u "$mnt" 2>/dev/null || kill -TERM "$mpid" 2>/dev/null || true
    for _ in $(seq 300); do
      kill -0 "$mpid" 2>/dev/null || break
      sleep 0.1
    done
    kill -TERM "$mpid" 2>/dev/null && sleep 1 && kill -TERM "$mpid" 2>/dev/null
    wait "$mpid" 2>/dev/null || true
    mountpoint -q "$mnt" && fusermount3 -uz "$mnt"
  fi
  if [ -n "$tpid" ]; then
    kill -TERM "$tpid" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
  fi
  echo "run.sh: stopped; the LUN's data stays in $dir/lun0.img"
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

# Each in a session of its own (setsid): Ctrl-C reaches this script only,
# which then stops them in order, the mount (it flushes to the target)
# before the target.
setsid "$build/target/iser-target" --fabric soft --portal "iser:127.0.0.1:$port" --target "$iqn" \
  --lun "$dir/lun0.img" --size "$size" >"$dir/target.log" 2>&1 &
tpid=$!
for _ in $(seq 100); do
  grep -q "listening on iser:127.0.0.1:$port " "$dir/target.log" && break
  kill -0 "$tpid" 2>/dev/null || break
  sleep 0.05
done
if ! grep -q "listening on iser:127.0.0.1:$port " "$dir/target.log"; then
  echo "run.sh: iser-target did not start:" >&2
  cat "$dir/target.log" >&2
  exit 1
fi

url=iser://127.0.0.1:$port/$iqn/0
setsid "$build/fuse/iser-mount" -f -o fabric=soft "$url" "$mnt" >"$dir/mount.log" 2>&1 &
mpid=$!
for _ in $(seq 100); do
  [ -e "$mnt/lun0" ] && break
  kill -0 "$mpid" 2>/dev/null || break
  sleep 0.05
done
if [ ! -e "$mnt/lun0" ]; then
  echo "run.sh: iser-mount did not mount:" >&2
  cat "$dir/mount.log" >&2
  exit 1
fi

bytes=$(stat -c %s "$mnt/lun0")
cat <<MSG

iserkit is running (iSER over the soft iWARP provider, on loopback).

  The LUN, as a file:  $mnt/lun0   ($((bytes / 1048576)) MiB)
  backed by:           $dir/lun0.img (sparse; kept between runs)
  target:              $url   (iser-target, pid $tpid, log $dir/target.log)
  mount:               iser-mount, pid $mpid, log $dir/mount.log
  statistics:          cat $mnt/.stats

  Try:  dd if=/dev/urandom of=$mnt/lun0 bs=1M count=16 oflag=direct conv=notrunc
        mkfs.ext4 -F $mnt/lun0 && mount -o loop $mnt/lun0 /mnt

  Stop: Ctrl-C here (or kill $$). Unmount any loop mount of the file first.

MSG
# Until Ctrl-C, or until one of the two ends by itself (then say so).
wait -n "$mpid" "$tpid" || true
for p in "$mpid" "$tpid"; do
  kill -0 "$p" 2>/dev/null && continue
  echo "run.sh: $([ "$p" = "$mpid" ] && echo iser-mount || echo iser-target) exited" \
    "by itself; its log: $dir/$([ "$p" = "$mpid" ] && echo mount || echo target).log" >&2
done
exit 1
