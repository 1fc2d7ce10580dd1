# shellcheck shell=bash
# Sourced by the target_*.sh integration tests: start iser-target on a
# port of the test's own on 127.0.0.1, stop it by PID (also when the test
# fails: an EXIT trap), and judge its exit (status, sanitizer reports).
#
# The caller sets bin (the iser-target executable) and calls tl_init NAME
# first. Afterwards: $dir (scratch, removed at exit), $pid, $port, $url,
# $log (the daemon's output), $fails (count of "not ok" lines).

# shellcheck disable=SC2034,SC2154 # bin comes from, url goes to, the caller
iqn=iqn.2026-11.org.iserkit:robust
pid=
fails=0
tl_children=()

# Outside meson, a UBSan report must stop the daemon as it does under
# meson; ASan leak checks are on by default, say it anyway.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

tl_cleanup() {
  local c
  for c in "${tl_children[@]}" $pid; do
    tl_running "$c" && kill -KILL "$c"
    wait "$c" 2>/dev/null
  done
  rm -rf "$dir"
}

tl_init() { # NAME
  dir=$(mktemp -d "/tmp/iserkit-$1.XXXXXX")
  log=$dir/target.log
  trap tl_cleanup EXIT
}

ok() { echo "ok - $*"; }
not_ok() {
  echo "not ok - $*"
  fails=$((fails + 1))
}
skip() {
  echo "SKIP: $*"
  exit 77
}

# tl_start SIZE [ARGS...]: one target, LUN 0 a sparse file of SIZE (or
# ${tl_lun}, a path the caller made); its portal is
# ${tl_prefix}127.0.0.1:PORT (tl_prefix=iser: for iSER).
tl_start() {
  local size=$1 base
  shift
  for base in $(seq $((20000 + $$ % 20000)) 41 $((20000 + $$ % 20000 + 41 * 20))); do
    # Emptied here: the job's own redirection may come after our first grep.
    : >"$log"
    "$bin" --portal "${tl_prefix:-}127.0.0.1:$base" --target "$iqn" --lun "${tl_lun:-$dir/lun0.img}" \
      --size "$size" "$@" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
      if grep -q "listening on ${tl_prefix:-}127.0.0.1:$base " "$log"; then
        port=$base
        url="iscsi://127.0.0.1:$port/$iqn/0"
        return 0
      fi
      tl_running "$pid" || break
      sleep 0.05
    done
    tl_running "$pid" && kill -KILL "$pid"
    wait "$pid" 2>/dev/null
    pid=
  done
  echo "Bail out! iser-target did not start"
  cat "$log"
  exit 1
}

# tl_running PID: whether our child PID still runs. Not kill -0, nor
# /proc/PID: bash reaps its children by itself, and their PIDs may then
# be reused by anyone's processes (a parallel test's, say).
tl_running() { jobs -rp | grep -qx "$1"; }

# tl_wait_exit PID SECONDS: its exit status; 137 when it had to be killed.
tl_wait_exit() {
  local p=$1 i
  for ((i = 0; i < $2 * 20; i++)); do
    tl_running "$p" || break
    sleep 0.05
  done
  tl_running "$p" && kill -KILL "$p"
  wait "$p"
}

# tl_sanitizer_clean: no ASan, LSan or UBSan report in the daemon's log.
tl_sanitizer_clean() {
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
    not_ok "sanitizer report from iser-target:"
    grep -A40 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log" | head -80
    return 1
  fi
  return 0
}

# tl_stop: SIGTERM; it must exit 0 (under ASan: no leak) within 5 s. A
# stop finishes the commands in flight and takes no new ones: that is
# milliseconds, not the time of a busy initiator's next commands.
tl_stop() {
  local rc t0 ms
  tl_running "$pid" || not_ok "iser-target died before SIGTERM"
  t0=$(date +%s%N)
  tl_running "$pid" && kill -TERM "$pid"
  tl_wait_exit "$pid" 15
  rc=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
  pid=
  if [ $rc -eq 137 ]; then
    not_ok "SIGTERM: iser-target still running after 15 s (killed)"
    tail -40 "$log"
  elif [ $rc -ne 0 ]; then
    not_ok "SIGTERM: iser-target exited $rc"
    tail -40 "$log"
  elif [ $ms -gt 5000 ]; then
    not_ok "SIGTERM: iser-target exited 0, but only after $ms ms"
    grep -vE 'info: (connection from|login from)' "$log" | tail -10
  else
    ok "SIGTERM: iser-target exited 0 after $ms ms"
  fi
  tl_sanitizer_clean
}

tl_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
tl_nfds() { find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
