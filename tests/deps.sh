#!/usr/bin/env bash
# Install, from Debian's archive, whatever building and testing vmm needs and is missing.
# Idempotent: does nothing when everything is there. Uses sudo when not root.
set -euo pipefail

packages=(
	# build
	gcc meson ninja-build pkg-config libglib2.0-dev libfdt-dev liburing-dev libaio-dev
	libjansson-dev libhttp-parser-dev zlib1g-dev libslirp-dev
	# tests: unit (cmocka), table checks (iasl), guest kit and test host
	libcmocka-dev acpica-tools python3 qemu-system-x86 busybox-static cpio lz4 xz-utils
	util-linux zstd
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
