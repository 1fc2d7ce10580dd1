#!/bin/bash
# Installs the Debian packages that building and testing iserkit need.
# Quiet and quick when they are all there already.
set -euo pipefail

pkgs=(
  build-essential pkg-config meson ninja-build clang
  check                               # unit tests
  libisal-dev                         # CRC32C for iSCSI digests and MPA
  liburing-dev                        # backing store I/O
  nettle-dev                          # CHAP digests
  libfuse3-dev fuse3                  # iser-mount
  libibverbs-dev librdmacm-dev        # the verbs RDMA provider
  libiscsi-bin                        # interop peer: iscsi-test-cu
  libiscsi-dev                        # integration: iscsi_load (async API)
  tgt                                 # interop peer: the initiator against tgt
  groff-base                          # man page lint
  fio e2fsprogs iproute2 procps       # integration: iser-mount (mount_*.sh)
  qemu-system-x86 mmdebstrap          # the kernel-RDMA lane (tests/vm/)
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=
  [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
