# shellcheck shell=bash
# lib.sh: what bench/mount and bench/iser share: the peers, the FUSE
# mounts, fio runs alternated between setups, the CPU time of the serving
# processes, and the table cells. The caller sets BENCH_NAME, IQN, SETUPS,
# TITLE, ROWS and MOUNT_SETUPS (those that are iser-mount), then sources
# this file.
# shellcheck disable=SC2034 # variables for the caller

readonly SECS=${BENCH_SECS:-8}
readonly ROUNDS=${BENCH_ROUNDS:-2}
readonly FILE_MIB=1024
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly BUILD=${BENCH_BUILD:-$REPO/build-bench}
readonly PT_SRC=/usr/share/doc/libfuse3-dev/examples
CLK_TCK=$(getconf CLK_TCK)
readonly CLK_TCK

dir=
# The targets we started, by name: their port and PID.
declare -A tport tpid
resident=
declare -A file pids na
# Per row and setup: summed I/Os, CPU ticks, seconds, each run's rate.
declare -A ios ticks secs rates failed
# Our processes by PID, and our mount points, for the cleanup.
mine=()
mounts=()

log() { echo "$BENCH_NAME: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# Unmount what we mounted, then stop what we started, by PID, also when a
# step failed.
cleanup() {
  local rc=$? m i
  for m in "${mounts[@]}"; do
    mountpoint -q "$m" && { timeout 10 fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"; }
  done
  # Last started first: the FUSE daemons flush to targets still there.
  for ((i = ${#mine[@]} - 1; i >= 0; i--)); do stop_pid "${mine[i]}"; done
  for m in "${mounts[@]}"; do mountpoint -q "$m" && fusermount3 -uz "$m"; done
  # start_uring_mount set the fuse module's enable_uring
  [ -z "${uring_was:-}" ] || echo "$uring_was" >/sys/module/fuse/parameters/enable_uring
  if [ -n "$dir" ]; then
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
      log "logs kept in $dir (the backing file removed)"
      rm -f "$dir/src/lun.img"
    elif ! findmnt -rn -o TARGET | grep -q "^$dir/"; then
      rm -rf --one-file-system "$dir"
    fi
  fi
}

# stop_pid PID: TERM, up to 3 s to exit, then KILL.
stop_pid() {
  local p=$1
  kill -TERM "$p" 2>/dev/null || return 0
  for _ in $(seq 30); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}

# Install the peers only when missing: a bench run should not touch apt.
# qemu-storage-daemon is in qemu-system-common, its libiscsi driver
# (block-iscsi.so) in qemu-block-extra; nbdfuse is in libnbd-bin;
# passthrough_ll.c comes as an example with libfuse3-dev.
need_packages() {
  local missing=()
  command -v fio >/dev/null || missing+=(fio)
  command -v fusermount3 >/dev/null || missing+=(fuse3)
  command -v qemu-storage-daemon >/dev/null || missing+=(qemu-system-common)
  ls /usr/lib/*/qemu/block-iscsi.so >/dev/null 2>&1 || missing+=(qemu-block-extra)
  command -v nbdkit >/dev/null || missing+=(nbdkit)
  command -v nbdfuse >/dev/null || missing+=(libnbd-bin)
  [ -f "$PT_SRC/passthrough_ll.c" ] || missing+=(libfuse3-dev)
  command -v gcc >/dev/null && command -v pkg-config >/dev/null || missing+=(gcc pkg-config)
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# A release build of iser-target and iser-mount; ninja makes it a no-op
# when up to date. Without iser-mount (no libfuse3, or not built yet) its
# column is n/a and the peers are still measured.
build_iserkit() {
  if ! command -v meson >/dev/null || ! command -v ninja >/dev/null; then
    bash "$REPO/tests/deps.sh"
  fi
  if [ ! -d "$BUILD" ]; then
    log "building iserkit (release) in $BUILD"
    meson setup "$BUILD" "$REPO" --buildtype=release -Dtests=false >/dev/null
  fi
  ninja -C "$BUILD" target/iser-target >/dev/null
  ninja -C "$BUILD" fuse/iser-mount >"$dir/build.log" 2>&1 ||
    log "iser-mount did not build (see $dir/build.log)"
  local s
  [ -x "$BUILD/fuse/iser-mount" ] ||
    for s in "${MOUNT_SETUPS[@]}"; do na[$s]="iser-mount is not built"; done
}

# passthrough_ll from libfuse's own example, with one change: the file is
# opened without the application's O_DIRECT, so that it serves from the
# page cache like the other servers (unchanged, fio's direct=1 would reach
# the disk under /tmp).
build_passthrough() {
  sed 's/open(buf, fi->flags & ~O_NOFOLLOW)/open(buf, fi->flags \& ~(O_NOFOLLOW | O_DIRECT))/' \
    "$PT_SRC/passthrough_ll.c" >"$dir/passthrough_ll.c"
  grep -q 'O_NOFOLLOW | O_DIRECT' "$dir/passthrough_ll.c" || {
    na[pt]="passthrough_ll.c changed upstream: cannot drop O_DIRECT"
    return
  }
  cp "$PT_SRC/passthrough_helpers.h" "$dir/"
  # shellcheck disable=SC2046 # pkg-config's words
  gcc -O2 -o "$dir/passthrough_ll" "$dir/passthrough_ll.c" $(pkg-config --cflags --libs fuse3) \
    >"$dir/pt-build.log" 2>&1 || na[pt]="passthrough_ll did not build (see $dir/pt-build.log)"
}

# A sparse file written once with random data, then read once, so every
# read hits the page cache (bench/target-tcp does the same).
make_backing() {
  mkdir -p "$dir/src"
  truncate -s "${FILE_MIB}M" "$dir/src/lun.img"
  dd if=/dev/urandom of="$dir/src/lun.img" bs=4M count=$((FILE_MIB / 4)) conv=notrunc \
    status=none
  warm
}

warm() { cat "$dir/src/lun.img" >/dev/null; }

note_resident() {
  local res
  command -v fincore >/dev/null || return 0
  res=$(fincore --bytes --noheadings --output RES "$dir/src/lun.img" 2>/dev/null) || return 0
  resident=$(awk -v r="$res" -v m="$resident" -v all=$((FILE_MIB * 1048576)) \
    'BEGIN { p = 100 * r / all; low = (m == "" || p < m + 0) ? p : m; print low }')
}

pick_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 12000))
    [ -z "$(ss -Htan "sport = :$p")" ] && echo "$p" && return 0
  done
  die "no free TCP port found"
}

# wait_for WHAT SECONDS CMD...: until CMD succeeds.
wait_for() {
  local what=$1 n=$(($2 * 10))
  shift 2
  for ((; n > 0; n--)); do
    "$@" 2>/dev/null && return 0
    sleep 0.1
  done
  log "$what: not ready"
  return 1
}

# start_target NAME PORTAL-PREFIX [ARGS...]: an iser-target on a free port
# ("iser:" for an iSER portal, which on soft serves iSCSI/TCP too).
start_target() {
  local n=$1 pre=$2 p
  shift 2
  p=$(pick_port)
  "$BUILD/target/iser-target" --portal "${pre}127.0.0.1:$p" --target "$IQN" \
    --lun "$dir/src/lun.img" "$@" >"$dir/target-$n.log" 2>&1 &
  tpid[$n]=$!
  tport[$n]=$p
  mine+=("${tpid[$n]}")
  wait_for "iser-target $n" 10 grep -q "listening on ${pre}127.0.0.1:$p " "$dir/target-$n.log" ||
    die "iser-target $n did not start: $(tail -3 "$dir/target-$n.log")"
}

# start_mount SETUP TARGET URL [OPTIONS]: iser-mount of LUN 0 at URL.
start_mount() {
  local s=$1 t=$2 u=$3 m=$dir/m-$1 p
  mkdir -p "$m"
  mounts+=("$m")
  "$BUILD/fuse/iser-mount" -f ${4:+-o "$4"} "$u/$IQN/0" "$m" >"$dir/mount-$s.log" 2>&1 &
  p=$!
  mine+=("$p")
  pids[$s]="${tpid[$t]} $p"
  file[$s]=$m/lun0
  wait_for "iser-mount $s" 20 test -f "${file[$s]}" ||
    na[$s]="iser-mount did not mount: $(tail -1 "$dir/mount-$s.log")"
}

# start_uring_mount SETUP LIKE TARGET URL OPTIONS: start_mount with -o
# uring added, where the fuse module offers FUSE over io_uring (its
# enable_uring is set for the run, and restored at exit); n/a as LIKE is.
start_uring_mount() {
  local s=$1 like=$2 param=/sys/module/fuse/parameters/enable_uring
  if [ -n "${na[$like]:-}" ]; then
    na[$s]=${na[$like]}
    return
  fi
  if [ ! -w "$param" ]; then
    na[$s]="no $param (before Linux 6.14?)"
    return
  fi
  [ -n "${uring_was:-}" ] || uring_was=$(cat "$param")
  echo Y >"$param"
  start_mount "$s" "$3" "$4" "${5:+$5,}uring"
  [ -n "${na[$s]:-}" ] || wait_for "FUSE over io_uring" 5 \
    grep -q "FUSE over io_uring: [0-9]* queues" "$dir/mount-$s.log" ||
    na[$s]="not in use: $(grep -m1 'io_uring' "$dir/mount-$s.log")"
}

# The FUSE export's mount point is a regular file, not a directory.
start_qsd() { # TARGET
  local t=$1 p
  file[qsd]=$dir/qsd.img
  : >"${file[qsd]}"
  mounts+=("${file[qsd]}")
  qemu-storage-daemon \
    --blockdev "driver=iscsi,node-name=lun,transport=tcp,portal=127.0.0.1:${tport[$t]},target=$IQN,lun=0" \
    --export "type=fuse,id=exp,node-name=lun,mountpoint=${file[qsd]},writable=on" \
    >"$dir/qsd.log" 2>&1 &
  p=$!
  mine+=("$p")
  pids[qsd]="${tpid[$t]} $p"
  wait_for qemu-storage-daemon 20 mountpoint -q "${file[qsd]}" ||
    na[qsd]="qemu-storage-daemon did not mount: $(tail -1 "$dir/qsd.log")"
}

start_nbd() {
  local m=$dir/m-nbd p q
  mkdir -p "$m"
  nbdkit -f -U "$dir/nbd.sock" file "$dir/src/lun.img" >"$dir/nbdkit.log" 2>&1 &
  p=$!
  mine+=("$p")
  wait_for nbdkit 10 test -S "$dir/nbd.sock" || {
    na[nbd]="nbdkit did not start: $(tail -1 "$dir/nbdkit.log")"
    return
  }
  mounts+=("$m")
  nbdfuse "$m/lun" --unix "$dir/nbd.sock" >"$dir/nbdfuse.log" 2>&1 &
  q=$!
  mine+=("$q")
  pids[nbd]="$p $q"
  file[nbd]=$m/lun
  wait_for nbdfuse 20 test -f "${file[nbd]}" ||
    na[nbd]="nbdfuse did not mount: $(tail -1 "$dir/nbdfuse.log")"
}

start_pt() {
  local m=$dir/m-pt p
  [ -z "${na[pt]:-}" ] || return 0
  mkdir -p "$m"
  mounts+=("$m")
  "$dir/passthrough_ll" -f -o "source=$dir/src,cache=never" "$m" >"$dir/pt.log" 2>&1 &
  p=$!
  mine+=("$p")
  pids[pt]=$p
  file[pt]=$m/lun.img
  wait_for passthrough_ll 10 test -f "${file[pt]}" ||
    na[pt]="passthrough_ll did not mount: $(tail -1 "$dir/pt.log")"
}

# cpu_ticks PID...: utime+stime of the processes (all their threads).
cpu_ticks() {
  local p stat sum=0
  local -a f
  for p in "$@"; do
    stat=$(<"/proc/$p/stat")
    stat=${stat##*) }
    read -r -a f <<<"$stat"
    sum=$((sum + f[11] + f[12]))
  done
  echo $sum
}

# alive SETUP WHEN: a server that died is a bug to report, not a number.
alive() {
  local p stat
  for p in ${pids[$1]}; do
    stat=$(cat "/proc/$p/stat" 2>/dev/null) || stat=
    stat=${stat##*) }
    [ -n "$stat" ] && [ "${stat%% *}" != Z ] && continue
    log "${TITLE[$1]}: process $p died $2; the logs are in $dir"
    die "stopping: ${TITLE[$1]} is gone"
  done
}

# run_one ROW SETUP: one fio run; adds its I/Os and the servers' CPU ticks.
# Terse output v3: field 5 is the error, 6-8 and 47-49 the read and write
# KiB, KiB/s and IOPS.
run_one() {
  local r=$1 s=$2 name unit rw bs qd before after out rc=0 iops
  IFS='|' read -r name unit rw bs qd <<<"${ROWS[$r]}"
  warm
  alive "$s" "before \"$name\""
  # shellcheck disable=SC2086 # pids is a list
  before=$(cpu_ticks ${pids[$s]})
  declare -F run_before >/dev/null && run_before "$r" "$s"
  out=$(timeout -k 5 $((SECS + 60)) fio --name=bench --filename="${file[$s]}" --direct=1 \
    --ioengine=libaio --iodepth="$qd" --rw="$rw" --bs="$bs" --size=${FILE_MIB}M \
    --time_based --runtime="$SECS" --norandommap --randrepeat=0 --thread \
    --output-format=terse --terse-version=3 2>&1) || rc=$?
  echo "$out" >>"$dir/fio-$s.log"
  alive "$s" "during \"$name\""
  # shellcheck disable=SC2086
  after=$(cpu_ticks ${pids[$s]})
  declare -F run_after >/dev/null && run_after "$r" "$s"
  note_resident
  iops=$(awk -F';' -v w="$rw" 'NF > 50 && $5 == 0 {
      printf "%d\n", (w == "write" ? $49 : $8) }' <<<"$out")
  if [ "$rc" != 0 ] || [ -z "$iops" ]; then
    log "${TITLE[$s]}: \"$name\" failed (exit $rc): $(tail -1 <<<"$out")"
    failed[$r,$s]=1
    return 0
  fi
  ios[$r,$s]=$((${ios[$r,$s]:-0} + iops * SECS))
  ticks[$r,$s]=$((${ticks[$r,$s]:-0} + after - before))
  secs[$r,$s]=$((${secs[$r,$s]:-0} + SECS))
  rates[$r,$s]="${rates[$r,$s]:-} $iops"
  log "${TITLE[$s]}: $name: $iops IOPS, $((after - before)) CPU ticks"
}

# Each row's runs go in setup order, then in reverse, and so on: every
# setup sees the same drift of a shared, noisy 2-core machine.
measure() {
  local r k s order=()
  for s in "${SETUPS[@]}"; do [ -n "${na[$s]:-}" ] || order+=("$s"); done
  for r in "${!ROWS[@]}"; do
    for ((k = 0; k < ROUNDS; k++)); do
      if ((k % 2 == 0)); then
        for s in "${order[@]}"; do run_one "$r" "$s"; done
      else
        for ((s = ${#order[@]} - 1; s >= 0; s--)); do run_one "$r" "${order[s]}"; done
      fi
    done
  done
}

# value ROW SETUP: "throughput cpu_us" (throughput in the row's unit), or
# "n/a" or "error".
value() {
  local r=$1 s=$2
  [ -z "${na[$s]:-}" ] || {
    echo n/a
    return
  }
  if [ -n "${failed[$r,$s]:-}" ] || [ -z "${ios[$r,$s]:-}" ]; then
    echo error
    return
  fi
  # 1 MiB per I/O in the MiB/s rows: their throughput is their IOPS
  awk -v ios="${ios[$r,$s]}" -v ticks="${ticks[$r,$s]}" -v secs="${secs[$r,$s]}" \
    -v hz="$CLK_TCK" 'BEGIN {
      printf "%.0f %.1f\n", ios / secs, (ios > 0 ? 1e6 * ticks / hz / ios : 0)
    }'
}

readonly COLFMT='%-21s %-5s'
cell() { # "tp cpu" | n/a | error
  local tp cpu
  read -r tp cpu <<<"$1"
  [ -n "${cpu:-}" ] || {
    printf ' %18s' "$tp"
    return
  }
  printf ' %9s %8s' "$tp" "${cpu}us"
}

# best_peer ROW: the highest throughput of qsd and nbdfuse, or "-".
best_peer() {
  local a b
  read -r a _ <<<"$(value "$1" qsd)"
  read -r b _ <<<"$(value "$1" nbd)"
  awk -v a="$a" -v b="$b" 'BEGIN {
    num = "^[0-9]+([.][0-9]+)?$"; m = -1
    if (a ~ num) m = a; if (b ~ num && b > m) m = b
    if (m > 0) print m; else print "-" }'
}

