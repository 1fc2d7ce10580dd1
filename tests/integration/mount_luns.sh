#!/bin/bash
# One mount, several LUNs, and every way a mount can be refused.
#
# A target with three LUNs (64, 32 and 16 MiB, the last read-only) mounted
# whole: each LUN is a file of its capacity, and a write to one lands in
# that LUN's backing file only; the read-only LUN reads but refuses a write
# with EROFS, and so does every LUN under -o ro; a URL with a LUN mounts
# that LUN alone. A second target requires CHAP: the right secret mounts
# (from the URL and from -o chap_file), a wrong one or none does not.
# Then the refusals: a wrong target name, a LUN that does not exist, a
# port where no target listens, a mount point that is not empty, a bad
# URL. Each must exit non-zero with one line on stderr naming the cause,
# and leave nothing mounted. --discover lists the LUNs; the options
# direct_io (the default), cache, max_io, initiator and allow_other do
# what they say, seen in .stats, the target and another user's access. Lastly, without -f iser-mount goes to the
# background once mounted, and leaves with fusermount3 -u.
# Against iser-target and against tgt (whose LUN 0 is its controller: the
# disks are LUNs 1 to 3 there).
#
# usage: mount_luns.sh ISER-TARGET ISER-MOUNT
set -u
tbin=$1
mbin=$2
# shellcheck source-path=SCRIPTDIR source=mount_lib.sh
. "$(dirname "$0")/mount_lib.sh"
ml_init luns

readonly CHAP_USER=alice CHAP_SECRET=averylongsecret1

# refused NAME REGEX URL MNT [OPTIONS]: iser-mount, as a user runs it (no
# -f), must fail: exit non-zero, one line on stderr matching REGEX
# (case-insensitive), MNT not a mount point. MNT is the caller's to make.
refused() {
  local name=$1 re=$2 u=$3 m=$4 o=${5:-} rc n
  timeout -k 5 30 "$mbin" ${o:+-o "$o"} "$u" "$m" >"$dir/refused.out" 2>"$dir/refused.err"
  rc=$?
  n=$(grep -c . "$dir/refused.err")
  if [ $rc -eq 0 ]; then
    not_ok "$name: iser-mount succeeded"
    ml_mnts+=("$m")
    fusermount3 -u "$m"
    ml_kill_daemon "$m"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    not_ok "$name: iser-mount still running after 30 s"
  elif [ "$n" -ne 1 ]; then
    not_ok "$name: exit $rc, but $n lines on stderr:"
    sed 's/^/#   /' "$dir/refused.err"
  elif ! grep -qiE "$re" "$dir/refused.err"; then
    not_ok "$name: exit $rc, but stderr does not say /$re/: $(cat "$dir/refused.err")"
  elif mountpoint -q "$m"; then
    not_ok "$name: exit $rc, yet $m is mounted"
  else
    ok "$name: exit $rc: $(cat "$dir/refused.err")"
  fi
}

# write_lands KIND M I: 1 MiB of new data written at 1 MiB into LUN I's
# file is in LUN I's backing file, and the other LUNs did not change.
write_lands() {
  local k=$1 m=$2 i=$3 j f=$2/lun${lun[$1,$3]} ok=1
  head -c 1M /dev/urandom >"$dir/chunk"
  for j in 0 1 2; do cp "${back[$k,$j]}" "$dir/before-$j"; done
  if ! dd if="$dir/chunk" of="$f" bs=1M seek=1 conv=notrunc,nocreat oflag=direct \
    status=none 2>"$dir/dd.err"; then
    not_ok "$k: writing $f: $(cat "$dir/dd.err")"
    return
  fi
  cmp -s -n 1048576 -i 1048576:0 "${back[$k,$i]}" "$dir/chunk" || ok=0
  for j in 0 1 2; do
    [ "$j" = "$i" ] || cmp -s "${back[$k,$j]}" "$dir/before-$j" || ok=0
  done
  if [ $ok = 1 ]; then
    ok "$k: a write to lun${lun[$k,$i]} lands in its backing file, and only there"
  else
    not_ok "$k: a write to lun${lun[$k,$i]} is not where it belongs"
  fi
}

# refuses_write NAME FILE: opening FILE for writing fails with EROFS.
refuses_write() {
  if dd if=/dev/zero of="$2" bs=4k count=1 conv=notrunc,nocreat status=none \
    2>"$dir/dd.err"; then
    not_ok "$1: a write to $2 succeeded"
  elif grep -q 'Read-only file system' "$dir/dd.err"; then
    ok "$1: a write is refused: $(sed 's/^dd: //' "$dir/dd.err")"
  else
    not_ok "$1: a write failed, but not with EROFS: $(cat "$dir/dd.err")"
  fi
}

whole_target() { # KIND
  local k=$1 m=$dir/all-$1 i f want sizes=(64 32 16)
  ml_mount "$m" "${url[$k]}" || {
    not_ok "$k: mount of the whole target"
    return
  }
  for i in 0 1 2; do
    f=$m/lun${lun[$k,$i]}
    want=$((sizes[i] << 20))
    if [ "$(stat -c %s "$f" 2>/dev/null)" = $want ]; then
      ok "$k: $f, ${sizes[i]} MiB"
    else
      not_ok "$k: $f: size $(stat -c %s "$f" 2>&1), want $want"
    fi
  done
  write_lands "$k" "$m" 0
  write_lands "$k" "$m" 1
  refuses_write "$k: read-only lun${lun[$k,2]}" "$m/lun${lun[$k,2]}"
  if ml_same "$m/lun${lun[$k,2]}" "${back[$k,2]}" >/dev/null; then
    ok "$k: read-only lun${lun[$k,2]} reads as its backing file"
  else
    not_ok "$k: read-only lun${lun[$k,2]} does not read as its backing file"
  fi
  ml_unmount "$m" fusermount || not_ok "$k: fusermount3 -u: iser-mount exited $?"
}

one_lun() { # KIND
  local k=$1 m=$dir/one-$1 names
  ml_mount "$m" "${url[$k]}/${lun[$k,1]}" || {
    not_ok "$k: mount of LUN ${lun[$k,1]}"
    return
  }
  # dot files (the statistics) are not LUNs
  names=$(find "$m" -mindepth 1 -maxdepth 1 -name 'lun*' -printf '%f ')
  if [ "$names" = "lun${lun[$k,1]} " ]; then
    ok "$k: a URL with LUN ${lun[$k,1]} shows $names"
  else
    not_ok "$k: a URL with LUN ${lun[$k,1]} shows: $names"
  fi
  ml_unmount "$m" term || not_ok "$k: SIGTERM: iser-mount exited $?"
  ml_mount "$m" "${url[$k]}/${lun[$k,0]}" ro || {
    not_ok "$k: mount -o ro"
    return
  }
  refuses_write "$k: -o ro" "$m/lun${lun[$k,0]}"
  if cmp -s -n 4096 "$m/lun${lun[$k,0]}" "${back[$k,0]}"; then
    ok "$k: -o ro reads"
  else
    not_ok "$k: -o ro: the LUN does not read as its backing file"
  fi
  ml_unmount "$m" term || not_ok "$k: SIGTERM: iser-mount exited $?"
}

chap() { # KIND
  local k=$1 c=$1-chap m=$dir/chap-$1 u s
  u=${url[$c]#*://}
  s=${url[$c]%%://*}
  if ml_mount "$m" "$s://$CHAP_USER%$CHAP_SECRET@$u/${lun[$c,0]}" &&
    cmp -s -n 65536 "$m/lun${lun[$c,0]}" "${back[$c,0]}"; then
    ok "$k: CHAP with the right secret in the URL: mounted, reads"
  else
    not_ok "$k: CHAP with the right secret in the URL"
  fi
  mountpoint -q "$m" && ml_unmount "$m" fusermount
  (
    umask 077
    printf '# ours\nuser=%s\npassword=%s\n' "$CHAP_USER" "$CHAP_SECRET" >"$dir/chap.conf"
  )
  chmod 600 "$dir/chap.conf"
  if ml_mount "$m" "${url[$c]}/${lun[$c,0]}" "chap_file=$dir/chap.conf"; then
    ok "$k: CHAP with the right secret from -o chap_file: mounted"
  else
    not_ok "$k: CHAP with the right secret from -o chap_file"
  fi
  mountpoint -q "$m" && ml_unmount "$m" fusermount
  # Readable by others: mounted all the same, with a warning (none above).
  chmod 644 "$dir/chap.conf"
  if ml_mount "$m" "${url[$c]}/${lun[$c,0]}" "chap_file=$dir/chap.conf" &&
    [ "$(grep -c "chap.conf holds CHAP secrets and is readable by others (mode 0644)" \
      "$dir/mount-chap-$k.out")" = 1 ]; then
    ok "$k: a chap_file of mode 0644: mounted, with a warning"
  else
    not_ok "$k: a chap_file of mode 0644: $(grep -m1 -i warn "$dir/mount-chap-$k.out")"
  fi
  mountpoint -q "$m" && ml_unmount "$m" fusermount
  refused "$k: CHAP, wrong secret" 'auth|chap|secret|password|denied' \
    "$s://$CHAP_USER%wrongsecret12@$u/${lun[$c,0]}" "$m"
  refused "$k: CHAP required, none given" 'auth|chap|secret|password|denied' \
    "${url[$c]}/${lun[$c,0]}" "$m"
}

errors() { # KIND
  local k=$1 m=$dir/err-$1
  mkdir -p "$m"
  refused "$k: wrong target name" 'not found|no such|unknown' \
    "${url[$k]%%/iqn*}/$iqn_base:no-such-target/${lun[$k,0]}" "$m"
  refused "$k: no such LUN" 'lun' "${url[$k]}/77" "$m"
  # The soft provider's MPA Request to a plain iSCSI/TCP portal: silence,
  # then its 10 s timeout, named as such.
  [ "$k" = iser ] && refused "$k: iser:// to an iSCSI/TCP portal" 'iSER' \
    "iser://127.0.0.1:${t_port[$k]}/$iqn_base:luns-$k/0" "$m"
}

# DESIGN §5, one port: the iSER portal on the soft provider takes plain
# iSCSI/TCP too; iser:// and iscsi:// mounts of one LUN at once.
one_port() { # KIND
  local k=$1 a=$dir/port-iser b=$dir/port-tcp u=${url[$1]#iser://}
  if ml_mount "$a" "${url[$k]}/${lun[$k,0]}" && ml_mount "$b" "iscsi://$u/${lun[$k,0]}" &&
    grep -q 'rx_pdus' "$b/.stats" && cmp -s -n 1048576 "$a/lun${lun[$k,0]}" "$b/lun${lun[$k,0]}" &&
    cmp -s -n 1048576 "$b/lun${lun[$k,0]}" "${back[$k,0]}"; then
    ok "$k: one port: an iser:// and an iscsi:// mount of the same portal read the same data"
  else
    not_ok "$k: one port: iser:// and iscsi:// on the same portal"
  fi
  mountpoint -q "$a" && ml_unmount "$a" fusermount
  mountpoint -q "$b" && ml_unmount "$b" fusermount
  # RFC 7143 §13.8: a TargetAddress has no transport prefix.
  if "$mbin" --discover "iscsi://127.0.0.1:${t_port[$k]}" >"$dir/disc.out" 2>&1 &&
    grep -q "Portal: 127.0.0.1:${t_port[$k]},1\$" "$dir/disc.out"; then
    ok "$k: SendTargets on the iSER portal: TargetAddress 127.0.0.1:${t_port[$k]},1"
  else
    not_ok "$k: SendTargets on the iSER portal: $(grep Portal "$dir/disc.out")"
  fi
}

# discover KIND: --discover lists the target, its portal and each LUN
# with its size, block size and read-only flag, and a URL to mount it by.
discover() {
  local k=$1 o=$dir/disc-$1.out i l sizes=(64 32 16) good=1 want
  if ! "$mbin" --discover "iscsi://127.0.0.1:${t_port[$k]}" >"$o" 2>&1; then
    not_ok "$k: --discover failed: $(head -3 "$o")"
    return
  fi
  grep -qx "Target: $iqn_base:luns-$k" "$o" &&
    grep -qx "  Portal: 127.0.0.1:${t_port[$k]},1" "$o" || good=0
  for i in 0 1 2; do
    l=$(grep "^  LUN ${lun[$k,$i]}: " "$o")
    want="${sizes[i]}.0 MiB ($((sizes[i] << 20)) bytes, $((sizes[i] << 11)) x 512)"
    [[ "$l" == *"$want"* ]] || good=0
    if [ "$i" = 2 ]; then [[ "$l" == *", read-only"* ]] || good=0; else [[ "$l" != *read-only* ]] || good=0; fi
    grep -qx " *iscsi://127.0.0.1:${t_port[$k]}/$iqn_base:luns-$k/${lun[$k,$i]}" "$o" || good=0
  done
  if [ $good = 1 ]; then
    ok "$k: --discover lists the target and its 3 LUNs with sizes, read-only and URLs"
  else
    not_ok "$k: --discover output:"
    sed 's/^/#   /' "$o"
  fi
}

# other_reads FILE: another user (65534) reads 4K of FILE; its error in
# $dir/setpriv.err.
other_reads() {
  setpriv --reuid=65534 --regid=65534 --clear-groups \
    dd if="$1" of=/dev/null bs=4k count=1 status=none 2>"$dir/setpriv.err"
}

# options KIND: what the mount options change, seen from outside. By
# default the file bypasses the page cache and a 1 MiB request is one
# FUSE request and one SCSI command; -o cache keeps what was read, -o
# max_io=64k cuts 1 MiB into 16 commands, -o initiator= is the name the
# target sees; without -o allow_other another user cannot open the file
# (FUSE refuses whatever the mode), with it they can.
options() {
  local k=$1 m=$dir/opt-$1 l=lun${lun[$1,0]} f r0 r1 r2 w0 w1 c0 c1 name root=1 same=
  f=$m/$l
  name=iqn.2026-11.org.iserkit:test-$k
  [ "$(id -u)" = 0 ] || root=
  [ -n "$root" ] || echo "# allow_other not checked: acting as another user needs root"
  chmod 711 "$dir" # mktemp's 0700 would stop the other user before FUSE does
  ml_mount "$m" "${url[$k]}/${lun[$k,0]}" "initiator=$name" || {
    not_ok "$k: mount with -o initiator"
    return
  }
  r0=$(ml_stat "$m" "$l" reads)
  dd if="$f" of=/dev/null bs=1M count=1 status=none
  dd if="$f" of=/dev/null bs=1M count=1 status=none
  r1=$(ml_stat "$m" "$l" reads)
  w0=$(ml_stat "$m" "$l" writes)
  c0=$(ml_stat "$m" "$l" cmds)
  dd if=/dev/urandom of="$f" bs=1M count=1 conv=notrunc,nocreat oflag=direct status=none
  w1=$(ml_stat "$m" "$l" writes)
  c1=$(ml_stat "$m" "$l" cmds)
  if [ $((r1 - r0)) = 2 ] && [ $((w1 - w0)) = 1 ] && [ $((c1 - c0)) = 1 ]; then
    ok "$k: by default each read reaches the target; 1 MiB is one FUSE write, one command"
  else
    not_ok "$k: default: 2 reads of 1 MiB made $((r1 - r0)) requests; a 1 MiB write $((w1 - w0)) requests and $((c1 - c0)) commands"
  fi
  if [ "${t_kind[$k]}" = tgt ]; then
    tgtadm -C "${t_port[$k]}" --lld iscsi --op show --mode target >"$dir/tgt-show.out" 2>&1
    grep -q "Initiator: $name " "$dir/tgt-show.out"
  else
    grep -q "($name) to $iqn_base:luns-$k" "${t_log[$k]}"
  fi
  # shellcheck disable=SC2181 # the if above, whichever branch ran
  if [ $? = 0 ]; then
    ok "$k: -o initiator=$name is the name the target sees"
  else
    not_ok "$k: the target does not know us as $name"
  fi
  if [ -z "$root" ]; then
    :
  elif other_reads "$f"; then
    not_ok "$k: without allow_other, another user read the file"
  elif grep -q 'Permission denied' "$dir/setpriv.err"; then
    ok "$k: without allow_other, another user gets EACCES"
  else
    not_ok "$k: without allow_other: $(cat "$dir/setpriv.err")"
  fi
  ml_unmount "$m" term || not_ok "$k: SIGTERM: iser-mount exited $?"
  ml_mount "$m" "${url[$k]}/${lun[$k,0]}" cache,max_io=64k,allow_other || {
    not_ok "$k: mount -o cache,max_io=64k,allow_other"
    return
  }
  # The first read reaches the target, the second is the page cache's.
  r0=$(ml_stat "$m" "$l" reads)
  dd if="$f" of="$dir/cached" bs=1M count=1 status=none
  r1=$(ml_stat "$m" "$l" reads)
  dd if="$f" of=/dev/null bs=1M count=1 status=none
  r2=$(ml_stat "$m" "$l" reads)
  cmp -s -n 1048576 "$dir/cached" "${back[$k,0]}" && same=1
  c0=$(ml_stat "$m" "$l" cmds)
  dd if=/dev/urandom of="$f" bs=1M count=1 conv=notrunc,nocreat oflag=direct status=none
  c1=$(ml_stat "$m" "$l" cmds)
  if [ "$r1" -gt "$r0" ] && [ "$r2" = "$r1" ] && [ -n "$same" ] && [ $((c1 - c0)) = 16 ]; then
    ok "$k: -o cache: a read again comes from the page cache; max_io=64k: 1 MiB in 16 commands"
  else
    not_ok "$k: -o cache,max_io=64k: reads made $((r1 - r0)) then $((r2 - r1)) requests, data as on the target: ${same:-no}; 1 MiB made $((c1 - c0)) commands"
  fi
  if [ -z "$root" ]; then
    :
  elif other_reads "$f"; then
    ok "$k: with allow_other, another user reads the file"
  else
    not_ok "$k: with allow_other: $(cat "$dir/setpriv.err")"
  fi
  ml_unmount "$m" term || not_ok "$k: SIGTERM: iser-mount exited $?"
}

# timers KIND: -o nop_interval and -o cmd_timeout reach the session. An
# idle mount with nop_interval=1 pings the target within 3 s (by default,
# after 5 s); with cmd_timeout=1, a read while iser-target is frozen times
# out and is aborted (by default, after 30 s), and returns the data once
# the target thaws.
timers() {
  local k=$1 m=$dir/tim-$1 l=lun${lun[$1,0]} p t a rc
  if ml_mount "$m" "${url[$k]}/${lun[$k,0]}" nop_interval=1; then
    sleep 3
    p=$(ml_stat "$m" session pings)
    if [ "${p:-0}" -ge 1 ]; then
      ok "$k: -o nop_interval=1: $p pings in 3 s idle"
    else
      not_ok "$k: -o nop_interval=1: no ping in 3 s idle"
    fi
    ml_unmount "$m" term || not_ok "$k: SIGTERM: iser-mount exited $?"
  else
    not_ok "$k: mount with -o nop_interval"
  fi
  ml_mount "$m" "${url[$k]}/${lun[$k,0]}" cmd_timeout=1 || {
    not_ok "$k: mount with -o cmd_timeout"
    return
  }
  # new data where the read goes, so that zeros would not pass
  head -c 4096 /dev/urandom >"$dir/tim.in"
  dd if="$dir/tim.in" of="$m/$l" bs=4k count=1 seek=300 conv=notrunc,nocreat oflag=direct \
    status=none
  kill -STOP "${t_pid[$k]}"
  dd if="$m/$l" of="$dir/tim.out" bs=4k count=1 skip=300 iflag=direct status=none &
  # thaw once the abort went out (1-2 s: the session's tick is 1 s), or
  # after 10 s
  for _ in $(seq 100); do
    [ "$(ml_stat "$m" session aborts)" -ge 1 ] 2>/dev/null && break
    sleep 0.1
  done
  kill -CONT "${t_pid[$k]}"
  wait $!
  rc=$?
  t=$(ml_stat "$m" session timeouts)
  a=$(ml_stat "$m" session aborts)
  if [ $rc -eq 0 ] && cmp -s "$dir/tim.out" "$dir/tim.in" && [ "${t:-0}" -ge 1 ] &&
    [ "${a:-0}" -ge 1 ]; then
    ok "$k: -o cmd_timeout=1: a read while the target was frozen timed out, was aborted ($a), and read the data written before"
  else
    not_ok "$k: -o cmd_timeout=1 across a freeze: dd exit $rc, timeouts ${t:-?}, aborts ${a:-?}"
  fi
  ml_unmount "$m" term || not_ok "$k: SIGTERM: iser-mount exited $?"
}

# Errors before any login: the same whatever the target.
local_errors() {
  local m=$dir/err p
  p=$(ml_port)
  mkdir -p "$m"
  refused "no target listening on the port" 'refused|connect|unreachable' \
    "iscsi://127.0.0.1:$p/$iqn_base:x/0" "$m"
  refused "nothing listening on another loopback address" 'refused|connect|unreachable' \
    "iscsi://127.0.0.2:$p/$iqn_base:x/0" "$m"
  refused "not an iSCSI URL" 'scheme|url' "http://127.0.0.1/$iqn_base:x/0" "$m"
  mkdir -p "$dir/full"
  echo keep >"$dir/full/somefile"
  refused "mount point not empty" 'empty' "${url[iser]}/0" "$dir/full"
  if [ "$(cat "$dir/full/somefile" 2>/dev/null)" = keep ]; then
    ok "the non-empty mount point kept its file"
  else
    not_ok "the non-empty mount point lost its file"
  fi
  refused "mount point missing" 'mount ?point|no such|exist' "${url[iser]}/0" "$dir/none/x"
}

# Without -f: iser-mount returns once mounted, and its daemon leaves when
# unmounted. It is not our child: ml_kill_daemon finds it if it stays.
background() {
  local m=$dir/bg rc
  mkdir -p "$m"
  ml_mnts+=("$m")
  timeout -k 5 30 "$mbin" "${url[iser]}/0" "$m" >"$dir/bg.out" 2>&1
  rc=$?
  if [ $rc -eq 0 ] && mountpoint -q "$m" && [ -f "$m/lun0" ]; then
    ok "without -f: iser-mount returned 0 with $m mounted"
  else
    not_ok "without -f: exit $rc, mounted: $(mountpoint -q "$m" && echo yes || echo no)"
    sed 's/^/#   /' "$dir/bg.out"
  fi
  mountpoint -q "$m" && fusermount3 -u "$m"
  if ml_daemon_gone "$m" 10; then
    ok "without -f: the daemon left after fusermount3 -u"
  else
    not_ok "without -f: the daemon still runs 10 s after fusermount3 -u"
    ml_kill_daemon "$m"
  fi
}

for k in $kinds; do
  ml_start "$k" "$k" "$iqn_base:luns-$k" - 64M 32M 16M:ro
  ml_start "$k-chap" "$k" "$iqn_base:chap-$k" "$CHAP_USER:$CHAP_SECRET" 16M
  head -c 16M /dev/urandom >"${back[$k,2]}"
  head -c 16M /dev/urandom >"${back[$k-chap,0]}"
  whole_target "$k"
  one_lun "$k"
  chap "$k"
  errors "$k"
  discover "$k"
  options "$k"
  [ "$k" = iser-soft ] && one_port "$k"
  if [ "$k" = iser ]; then
    timers "$k"
    local_errors
    background
  fi
  ml_stop "$k"
  ml_stop "$k-chap"
done
ml_done
