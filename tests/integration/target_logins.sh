#!/bin/bash
# 1,000 logins and logouts (libiscsi's iscsi-inq: login, INQUIRY, logout)
# against one iser-target: every one succeeds, the daemon's memory and
# file descriptors do not grow, and SIGTERM exits 0 (under ASan, with
# LeakSanitizer finding no leak).
#
# usage: target_logins.sh ISER-TARGET
set -u
bin=$1
# shellcheck source-path=SCRIPTDIR source=target_lib.sh
. "$(dirname "$0")/target_lib.sh"
tl_init logins

command -v iscsi-inq >/dev/null || skip "iscsi-inq not installed (Debian package libiscsi-bin)"

# ASan keeps freed memory in a quarantine of 256 MiB, which grows RSS by
# what each login frees; keep it small so that RSS shows real growth.
export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=1"
tl_start 64M

n=1000
bad=0
for i in $(seq $n); do
  if ! iscsi-inq "$url" >"$dir/inq.out" 2>&1 || ! grep -q "^Vendor:ISERKIT" "$dir/inq.out"; then
    bad=$((bad + 1))
    if [ $bad -le 3 ]; then
      echo "# login $i failed:"
      sed 's/^/# /' "$dir/inq.out"
    fi
    tl_running "$pid" || break
  fi
  if [ "$i" -eq 100 ]; then
    rss100=$(tl_rss_kb)
    fds100=$(tl_nfds)
  fi
done
if tl_running "$pid"; then
  rss=$(tl_rss_kb)
  fds=$(tl_nfds)
else
  rss=0 fds=0
fi
if [ $bad -eq 0 ]; then ok "$n logins, INQUIRY and logouts"; else not_ok "$bad of $n logins failed"; fi

# A conn with its 8 KiB receive buffer kept per login would add 7 MiB.
growth=$((rss - rss100))
if [ "$rss" -gt 0 ] && [ $growth -le 512 ]; then
  ok "RSS ${rss100} kB after 100 logins, ${rss} kB after $n"
else
  not_ok "RSS grew from ${rss100} kB after 100 logins to ${rss} kB after $n"
fi
if [ "$fds" -gt 0 ] && [ "$fds" -eq "$fds100" ]; then
  ok "$fds file descriptors after 100 logins and after $n"
else
  not_ok "file descriptors: $fds100 after 100 logins, $fds after $n"
fi

tl_stop
out=$(grep -c "closed: logged out" "$log")
if [ "$out" -eq $n ]; then ok "the target logged $n logouts"; else not_ok "the target logged $out logouts of $n"; fi

[ "$fails" -eq 0 ]
