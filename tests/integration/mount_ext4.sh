#!/bin/bash
# ext4 on a LUN file: mkfs.ext4 on the file in the iser-mount mount, a loop
# mount of it, a tree of files written (generated files of many sizes,
# sparse and empty ones, symlinks, a hard link, and a copy of part of
# /usr/share/doc), unmount, and a new iser-mount session: fsck.ext4 -fn
# must find the file system clean, and the tree mounted again must be the
# one written (diff -r, and the hard link still one inode). Against
# iser-target and against tgt.
#
# usage: mount_ext4.sh ISER-TARGET ISER-MOUNT
set -u
tbin=$1
mbin=$2
# shellcheck source-path=SCRIPTDIR source=mount_lib.sh
. "$(dirname "$0")/mount_lib.sh"
ml_need mkfs.ext4 e2fsprogs
ml_need fsck.ext4 e2fsprogs
ml_need losetup mount
[ "$(id -u)" = 0 ] || skip "mount -o loop needs root"
ml_init ext4

# The source tree, once for both targets: 2 levels of directories, files
# from 0 bytes to 3 MiB of random data, one sparse 64 MiB file.
make_tree() {
  local s=$dir/src d f i
  mkdir -p "$s"
  for d in a a/b c c/d/e; do
    mkdir -p "$s/$d"
    for i in $(seq 12); do
      f=$s/$d/f$i
      head -c $(((RANDOM * 32768 + RANDOM) % (3 << 20) / (i % 4 + 1))) /dev/urandom >"$f"
    done
  done
  : >"$s/empty"
  truncate -s 64M "$s/c/sparse"
  printf 'middle' | dd of="$s/c/sparse" bs=1 seek=33554432 conv=notrunc status=none
  ln -s a/b/f1 "$s/link"
  ln "$s/a/f2" "$s/c/hardlink"
  mkdir -p "$s/doc"
  for d in /usr/share/doc/fio /usr/share/doc/e2fsprogs /usr/share/doc/bash; do
    [ -d "$d" ] && cp -a "$d" "$s/doc/"
  done
}

# loop_mount FILE DIR: mount the ext4 file system in FILE (our LUN file);
# not in a $(...): the cleanup must learn of the mount.
loop_mount() {
  mkdir -p "$2"
  ml_loops+=("$2")
  mount -o loop "$1" "$2" 2>"$dir/loop.err" && return 0
  echo "# $(cat "$dir/loop.err")"
  return 1
}

# loop_umount DIR FILE: unmount, then wait until no loop device holds
# FILE (autoclear detaches it asynchronously), or the FUSE mount stays busy.
loop_umount() {
  umount "$1" || return 1
  for _ in $(seq 100); do
    [ -z "$(losetup -j "$2")" ] && return 0
    sleep 0.05
  done
  echo "# a loop device still holds $2: $(losetup -j "$2")"
  return 1
}

run() { # KIND
  local k=$1 m=$dir/mnt-$1 e=$dir/ext-$1 f out
  ml_start "$k" "$k" "$iqn_base:ext4-$k" - 512M
  ml_mount "$m" "${url[$k]}/${lun[$k,0]}" || {
    not_ok "$k: mount"
    return
  }
  f=$m/lun${lun[$k,0]}
  if out=$(mkfs.ext4 -F -q -E nodiscard "$f" 2>&1); then
    ok "$k: mkfs.ext4 on $f"
  else
    not_ok "$k: mkfs.ext4: $out"
    return
  fi
  if ! loop_mount "$f" "$e"; then
    not_ok "$k: mount -o loop"
    return
  fi
  if cp -a "$dir/src/." "$e/" && sync -f "$e/empty" && loop_umount "$e" "$f"; then
    ok "$k: tree of $(find "$dir/src" | wc -l) entries ($(du -sh "$dir/src" | cut -f1)) written, unmounted"
  else
    not_ok "$k: writing the tree"
    return
  fi
  # A new session: what fsck and the mount see comes from the target.
  ml_unmount "$m" fusermount || not_ok "$k: fusermount3 -u: iser-mount exited $?"
  ml_mount "$m" "${url[$k]}/${lun[$k,0]}" || {
    not_ok "$k: mount again"
    return
  }
  if out=$(fsck.ext4 -fn "$f" 2>&1); then
    ok "$k: fsck.ext4 -fn: clean"
  else
    not_ok "$k: fsck.ext4 -fn:"
    echo "$out" | tail -20 | sed 's/^/#   /'
  fi
  if ! loop_mount "$f" "$e"; then
    not_ok "$k: mount -o loop again"
    return
  fi
  if out=$(diff -r --no-dereference "$dir/src" "$e" 2>&1 | grep -v '^Only in .*: lost+found$'); then
    not_ok "$k: the tree read back differs:"
    echo "$out" | head -20 | sed 's/^/#   /'
  else
    ok "$k: the tree read back is the tree written (diff -r)"
  fi
  if [ "$(stat -c %i "$e/a/f2")" = "$(stat -c %i "$e/c/hardlink")" ] &&
    [ "$(readlink "$e/link")" = a/b/f1 ]; then
    ok "$k: hard link and symlink intact"
  else
    not_ok "$k: hard link or symlink lost"
  fi
  loop_umount "$e" "$f" || not_ok "$k: umount of the ext4 file system"
  ml_unmount "$m" term || not_ok "$k: SIGTERM: iser-mount exited $?"
  ml_stop "$k"
}

make_tree
for k in $kinds; do run "$k"; done
ml_done
