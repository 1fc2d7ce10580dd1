#!/bin/bash
# libiscsi's compliance suite (iscsi-test-cu --dataloss, every family)
# against iser-target on loopback with a sparse thin-provisioned LUN.
# Passes only with 0 failures; lists every skipped test with its reason.
#
# usage: iscsi_test_cu.sh ISER-TARGET [plain|chap|sync|hdigest]
#   chap: the target requires mutual CHAP; the URL carries both accounts.
#   sync: the backing store runs without io_uring (the forced fallback).
#   hdigest: the target requires CRC32C header digests (iscsi-test-cu
#     offers "None,CRC32C", so it gets them). Data digests cannot be run
#     here: libiscsi 1.19 always declares DataDigest=None (lib/login.c).
set -u
target_bin=$1
mode=${2:-plain}

if ! command -v iscsi-test-cu >/dev/null; then
  echo "SKIP: iscsi-test-cu not installed (Debian package libiscsi-bin)"
  exit 77
fi

dir=$(mktemp -d /tmp/iserkit-cu.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

iqn=iqn.2026-11.org.iserkit:cu
# Two portals on a port of our own, so that the multipath tests can run.
for base in $(seq $((20000 + $$ % 20000)) 37 $((20000 + $$ % 20000 + 37 * 20))); do
  cat >"$dir/target.conf" <<CONF
[global]
portal = 127.0.0.1:$base
portal = 127.0.0.1:$((base + 1))
[target $iqn]
[lun 0]
path = $dir/lun0.img
size = 256M
CONF
  if [ "$mode" = chap ]; then
    sed -i "s/^\[target $iqn\]$/&\nchap = cuuser cusecret12345\nmutual-chap = cutarget tgtsecret67890/" \
      "$dir/target.conf"
  fi
  if [ "$mode" = hdigest ]; then
    sed -i "s/^\[global\]$/&\nheader-digest = crc32c/" "$dir/target.conf"
  fi
  if [ "$mode" = sync ]; then
    ISERKIT_IOQ=sync "$target_bin" -c "$dir/target.conf" >"$dir/target.log" 2>&1 &
  else
    "$target_bin" -c "$dir/target.conf" >"$dir/target.log" 2>&1 &
  fi
  pid=$!
  for _ in $(seq 50); do
    grep -q "listening on 127.0.0.1:$((base + 1))" "$dir/target.log" && break 2
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=
done
if [ -z "$pid" ]; then
  echo "FAIL: iser-target did not start"
  cat "$dir/target.log"
  exit 1
fi

cred='' args=''
if [ "$mode" = chap ]; then
  cred="cuuser%cusecret12345@"
  args="?target_user=cutarget&target_password=tgtsecret67890"
fi
if [ "$mode" = sync ] && ! grep -q "io_uring unavailable" "$dir/target.log"; then
  echo "FAIL: ISERKIT_IOQ=sync did not force the synchronous backing store"
  exit 1
fi
url="iscsi://${cred}127.0.0.1:$base/$iqn/0$args"
url2="iscsi://${cred}127.0.0.1:$((base + 1))/$iqn/0$args"
if [ "$mode" = chap ]; then
  # CHAP really is required: no credentials, or a wrong secret, fail.
  for bad in "" "cuuser%wrongsecret99@"; do
    if iscsi-inq "iscsi://${bad}127.0.0.1:$base/$iqn/0" >"$dir/inq.log" 2>&1 ||
      ! grep -q "Authentication failure" "$dir/inq.log"; then
      echo "FAIL: login with credentials '$bad' was not refused"
      cat "$dir/inq.log"
      exit 1
    fi
  done
  if LIBISCSI_CHAP_TARGET_USERNAME=cutarget LIBISCSI_CHAP_TARGET_PASSWORD=notthesecret1 \
    iscsi-inq "iscsi://cuuser%cusecret12345@127.0.0.1:$base/$iqn/0" >"$dir/inq.log" 2>&1; then
    echo "FAIL: libiscsi accepted a target that does not know the mutual secret"
    exit 1
  fi
  echo "CHAP: wrong and missing credentials refused; mutual CHAP checked both ways"
fi
# Each line stamped as it comes (stdbuf: libiscsi's stdout is a pipe), so
# that the slowest tests can be named: a run takes 50 s here, or 200.
timeout 300 stdbuf -oL -eL iscsi-test-cu --dataloss "$url" "$url2" 2>&1 |
  (
    LC_ALL=C # a decimal point in $EPOCHREALTIME
    # || [ -n "$l" ]: the line of a test that timeout killed has no end
    while IFS= read -r l || [ -n "$l" ]; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done
  ) >"$dir/cu.ts"
rc=${PIPESTATUS[0]}
cut -d' ' -f2- "$dir/cu.ts" >"$dir/cu.log"

# Real failures: a test line ending in FAILED, or FAILED alone after a
# test's messages ("[FAILED]" inside a message is an expected failure).
awk '/^Suite: /{s=$2} /^  Test: /{t=$2} /\.\.\.FAILED$|^FAILED$/{print "FAILED: " s "." t}' \
  "$dir/cu.log" | sort -u >"$dir/failed"
echo "Skipped tests and why:"
awk '/^Suite: /{s=$2} /^  Test: /{t=$2} /\[SKIPPED\]/{sub(/.*\[SKIPPED\] */, ""); print "  " s "." t ": " $0}' \
  "$dir/cu.log" | sort -u
summary=$(grep -E '^ +tests ' "$dir/cu.log")
echo "iscsi-test-cu summary: $summary"
echo "Slowest tests, seconds since the line before (a test's messages split it):"
awk '/^[0-9.]+ Suite: /{s=$3} {d=$1-t; t=$1} /^[0-9.]+   Test: /{printf "  %6.2f %s.%s\n", d, s, $3}' \
  "$dir/cu.ts" | sort -rn | head -5
awk 'NR==1{a=$1} {b=$1} END{printf "iscsi-test-cu ran %.0f s\n", b-a}' "$dir/cu.ts"
cat "$dir/failed"
if ! kill -0 "$pid" 2>/dev/null; then
  echo "FAIL: iser-target died"
  tail -30 "$dir/target.log"
  exit 1
fi
if [ -z "$summary" ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; }; then
  echo "FAIL: iscsi-test-cu did not finish (exit $rc)"
  tail -30 "$dir/cu.log"
  exit 1
fi
if [ "$mode" = hdigest ]; then
  # Every session iscsi-test-cu made ran with the digest (the target logs
  # what each login negotiated).
  n=$(grep -c 'login from .*iscsi-test' "$dir/target.log")
  d=$(grep -c 'login from .*iscsi-test.*header digest CRC32C' "$dir/target.log")
  echo "header digests: $d of $n logins negotiated CRC32C"
  if [ "$n" = 0 ] || [ "$d" != "$n" ]; then
    echo "FAIL: not every session used CRC32C header digests"
    exit 1
  fi
fi
# A clean stop after all that: SIGTERM exits 0 (under ASan, also no leak).
kill -TERM "$pid"
wait "$pid"
trc=$?
pid=
if [ $trc -ne 0 ]; then
  echo "FAIL: iser-target exited $trc on SIGTERM"
  tail -40 "$dir/target.log"
  exit 1
fi
if [ -s "$dir/failed" ]; then
  exit 1
fi
exit 0
