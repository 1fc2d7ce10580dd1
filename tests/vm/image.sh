#!/bin/bash
# Builds, once, the guest image of the kernel-RDMA lane and prints the
# directory that holds it (vmlinuz, initrd.img, rootfs.img).
#
# A Debian bookworm guest with Debian's kernel, siw built for that kernel
# (Debian does not enable CONFIG_RDMA_SIW), the peers (open-iscsi, tgt,
# libiscsi, LIO's configfs) and the project's runtime libraries. The image
# is cached outside the repo under $ISERKIT_VM_CACHE (default
# /var/cache/iserkit-vm), keyed by the kernel's package version and by this
# script, so that later runs only boot. See ../shared/notes/vm-guest.md.
#
# Usage: image.sh            build if missing, print the image directory
#        image.sh --key      print the cache key only
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${ISERKIT_VM_CACHE:-/var/cache/iserkit-vm}
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list

log() { echo "vm-image: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# The kernel the guest runs: the one linux-image-amd64 names today.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
	awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || die "cannot find linux-image-amd64's kernel (apt-get update?)"
kver=${kpkg#linux-image-}
kpkgver=$(apt-cache policy "$kpkg" | awk '/Candidate:/ {print $2}')
srcver=$(apt-cache policy linux-source-6.1 | awk '/Candidate:/ {print $2}')
[ "$kpkgver" = "$srcver" ] ||
	die "linux-source-6.1 is $srcver but $kpkg is $kpkgver: siw must be built from the kernel's own source"

recipe=$(cat "$here/image.sh" "$here/init" | sha256sum | cut -c1-12)
key="$kver-$kpkgver-$recipe"
if [ "${1:-}" = --key ]; then
	echo "$key"
	exit 0
fi
dir=$cache/$key
if [ -f "$dir/done" ]; then
	echo "$dir"
	exit 0
fi

# Building: everything the tools print goes to stderr; stdout carries the
# image directory alone (mkfs.ext4 -q still says "Creating regular file").
exec 3>&1 1>&2
command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed"
mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
ovl=
cleanup() {
	[ -z "$ovl" ] || {
		for m in dev/pts dev proc sys; do umount "$ovl/merged/$m" 2>/dev/null || true; done
		umount "$ovl/merged" 2>/dev/null || true
	}
	rm -rf "$work"
}
trap cleanup EXIT
root=$work/rootfs
t0=$SECONDS

# What the guest runs: the peers, RDMA tools, and the libraries that the
# host-built iser-target and iser-mount link against.
pkgs=(
	"$kpkg" kmod iproute2 procps util-linux e2fsprogs fuse3
	rdma-core ibverbs-providers ibverbs-utils rdmacm-utils perftest
	libiscsi-bin open-iscsi tgt fio
	libfuse3-3 libibverbs1 librdmacm1 liburing2 libisal2 libnettle8
	libiscsi7
)
log "bootstrapping bookworm with $kpkg ($kpkgver)"
# A small initrd: only what finds the virtio root disk and the 9p share.
# Set before the kernel package is configured (essential hook).
mmdebstrap --variant=minbase --quiet \
	--include="$(
		IFS=,
		echo "${pkgs[*]}"
	)" \
	--essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"
		echo MODULES=list >"$1/etc/initramfs-tools/conf.d/iserkit"
		printf "%s\n" virtio_pci virtio_blk ext4 9pnet_virtio 9p >"$1/usr/share/initramfs-tools/modules.d/iserkit"' \
	--customize-hook='rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/var/cache/apt/*.bin "$1"/var/lib/apt/lists/*_Packages' \
	bookworm "$root" "$sources" >&2
log "bootstrap done in $((SECONDS - t0)) s"

# siw, out of tree, in an overlay over the rootfs so that the compiler and
# the kernel source stay out of the image.
t1=$SECONDS
ovl=$work/ovl
mkdir -p "$ovl/upper" "$ovl/work" "$ovl/merged"
mount -t overlay overlay -o "lowerdir=$root,upperdir=$ovl/upper,workdir=$ovl/work" "$ovl/merged"
for m in proc sys dev dev/pts; do mount --bind "/$m" "$ovl/merged/$m"; done
cp /etc/resolv.conf "$ovl/merged/etc/resolv.conf" 2>/dev/null || true
log "building siw for $kver"
chroot "$ovl/merged" /bin/bash -euc "
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends linux-source-6.1 linux-headers-$kver make gcc xz-utils >/dev/null
	mkdir -p /tmp/k && cd /tmp/k
	tar -xaf /usr/src/linux-source-6.1.tar.xz linux-source-6.1/drivers/infiniband/sw/siw
	make -s -C /lib/modules/$kver/build M=/tmp/k/linux-source-6.1/drivers/infiniband/sw/siw CONFIG_RDMA_SIW=m modules
" >&2
mkdir -p "$root/lib/modules/$kver/updates"
cp "$ovl/merged/tmp/k/linux-source-6.1/drivers/infiniband/sw/siw/siw.ko" "$root/lib/modules/$kver/updates/"
for m in dev/pts dev proc sys; do umount "$ovl/merged/$m"; done
umount "$ovl/merged"
ovl=
rm -rf "$work/ovl"
chroot "$root" depmod "$kver"
log "siw built in $((SECONDS - t1)) s"

# The guest's init: mount what the tests need and run the script that the
# host put in the share. The test logic lives in the repo (guest.sh), so
# the image does not change when the tests do.
install -m 755 "$here/init" "$root/sbin/iserkit-init"
mkdir -p "$root/share"
echo iserkit-guest >"$root/etc/hostname"
# tgt and LIO read and write here; iscsid wants an initiator name.
mkdir -p "$root/etc/iscsi"
echo "InitiatorName=iqn.2026-11.org.example:guest" >"$root/etc/iscsi/initiatorname.iscsi"

cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$work/initrd.img"
rm -rf "$root/boot"/*
mkfs.ext4 -q -L iserkit -d "$root" "$work/rootfs.img" 2G
rm -rf "$root"

rm -rf "$dir"
mkdir -p "$dir"
mv "$work/vmlinuz" "$work/initrd.img" "$work/rootfs.img" "$dir/"
echo "$kver $kpkgver" >"$dir/done"
# Older images of this cache are of no further use.
for old in "$cache"/*/; do
	[ "${old%/}" = "$dir" ] || rm -rf "${old%/}"
done
log "image ready in $((SECONDS - t0)) s: $dir"
echo "$dir" >&3
