#!/bin/bash
# iser-target's command line and config errors: each names its cause, the
# daemon exits non-zero, and no portal was opened. Then a good start, a
# login from libiscsi (software nobody here wrote), and SIGTERM exiting 0.
set -u
bin=$1
dir=$(mktemp -d /tmp/iserkit-cli.XXXXXX)
pid=
fails=0
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

port=$((30000 + $$ % 20000))
iqn=iqn.2026-11.org.iserkit:cli

check() { # NAME WANT-SUBSTRING CMD...
  local name=$1 want=$2 out rc
  shift 2
  out=$("$@" 2>&1)
  rc=$?
  if [ $rc -eq 0 ] || ! grep -qF -- "$want" <<<"$out"; then
    echo "not ok - $name: exit $rc, output: $out"
    fails=$((fails + 1))
  elif ss -ltn 2>/dev/null | grep -q ":$port "; then
    echo "not ok - $name: a portal was left open"
    fails=$((fails + 1))
  else
    echo "ok - $name"
  fi
}

cat >"$dir/bad.conf" <<CONF
[global]
portal = 127.0.0.1:$port
[target $iqn]
[lun 0]
path = $dir/x.img
block-size = 1000
CONF
check "bad config names file and line" "$dir/bad.conf:6: bad value '1000' for 'block-size'" \
  "$bin" -c "$dir/bad.conf"
check "missing config file" "No such file" "$bin" -c "$dir/none.conf"
check "unknown flag" "Try 'iser-target --help'" "$bin" --bogus
check "lun before target" "--lun $dir/a.img before any --target" "$bin" --portal "127.0.0.1:$port" --lun "$dir/a.img"
check "no portal" "no portal" "$bin" --target "$iqn" --lun "$dir/a.img"
check "bad portal" "bad portal '127.0.0.1:99999'" "$bin" --portal 127.0.0.1:99999 --target "$iqn" --lun "$dir/a.img"
check "backing file missing" "cannot open $dir/missing.img" \
  "$bin" --portal "127.0.0.1:$port" --target "$iqn" --lun "$dir/missing.img"
if "$bin" --help | grep -q -- "--portal"; then echo "ok - --help"; else echo "not ok - --help"; fails=$((fails + 1)); fi

# A good start: the LUN file is created sparse, libiscsi logs in.
"$bin" --portal "127.0.0.1:$port" --target "$iqn" --lun "$dir/d.img" --size 64M >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q listening "$dir/log" && break; sleep 0.1; done
size=$(stat -c %s "$dir/d.img" 2>/dev/null)
alloc=$(stat -c %b "$dir/d.img" 2>/dev/null)
if [ "$size" = 67108864 ] && [ "${alloc:-1}" -lt 64 ]; then echo "ok - LUN created sparse"; else
  echo "not ok - LUN created sparse (size $size, blocks $alloc)"; fails=$((fails + 1)); fi
if command -v iscsi-readcapacity16 >/dev/null; then
  out=$(iscsi-readcapacity16 "iscsi://127.0.0.1:$port/$iqn/0" 2>&1)
  if grep -q "LOGICAL BLOCK LENGTH IN BYTES:512" <<<"$out" && grep -q "RETURNED LOGICAL BLOCK ADDRESS:131071" <<<"$out" && grep -q "LBPME:1" <<<"$out"; then
    echo "ok - READ CAPACITY(16) through libiscsi"
  else
    echo "not ok - READ CAPACITY(16): $out"; fails=$((fails + 1))
  fi
else
  echo "ok - # SKIP libiscsi-bin not installed"
fi
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
if [ $rc -eq 0 ]; then echo "ok - SIGTERM exits 0"; else echo "not ok - SIGTERM exit $rc"; fails=$((fails + 1)); fi

# Discovery (SendTargets) lists the targets this initiator may log in to;
# SIGHUP applies a new allow list to new logins.
if command -v iscsi-ls >/dev/null; then
  cat >"$dir/two.conf" <<CONF
[global]
portal = 127.0.0.1:$port
[target $iqn:a]
[lun 0]
path = $dir/a.img
size = 8M
[target $iqn:b]
allow = iqn.2026-11.org.iserkit:someone-else
[lun 0]
path = $dir/b.img
size = 8M
CONF
  "$bin" -c "$dir/two.conf" >"$dir/log2" 2>&1 &
  pid=$!
  for _ in $(seq 50); do grep -q listening "$dir/log2" && break; sleep 0.1; done
  out=$(iscsi-ls "iscsi://127.0.0.1:$port" 2>&1)
  if grep -q "Target:$iqn:a Portal:127.0.0.1:$port,1" <<<"$out" && ! grep -q "$iqn:b" <<<"$out"; then
    echo "ok - SendTargets lists the allowed target only"
  else
    echo "not ok - SendTargets: $out"; fails=$((fails + 1))
  fi
  if iscsi-inq "iscsi://127.0.0.1:$port/$iqn:b/0" 2>&1 | grep -q "Authorization failure"; then
    echo "ok - login refused by the allow list"
  else
    echo "not ok - login to $iqn:b not refused"; fails=$((fails + 1))
  fi
  if iscsi-inq "iscsi://127.0.0.1:$port/$iqn:a/0" >/dev/null 2>&1; then
    sed -i "s/^\[target $iqn:a\]$/&\nallow = iqn.2026-11.org.iserkit:nobody/" "$dir/two.conf"
    kill -HUP "$pid"
    for _ in $(seq 50); do grep -q "reloaded" "$dir/log2" && break; sleep 0.1; done
    if iscsi-inq "iscsi://127.0.0.1:$port/$iqn:a/0" 2>&1 | grep -q "Authorization failure"; then
      echo "ok - SIGHUP applies a new allow list"
    else
      echo "not ok - SIGHUP did not apply the allow list"; fails=$((fails + 1))
    fi
  else
    echo "not ok - login to $iqn:a"; fails=$((fails + 1))
  fi
  kill -TERM "$pid"
  wait "$pid"
  pid=
fi

[ $fails -eq 0 ]
