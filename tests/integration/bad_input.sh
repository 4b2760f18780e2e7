#!/usr/bin/env bash
# Bad input from users: each case must print exactly one line on stderr that names the thing
# that is wrong, exit with the documented non-zero status, and leave no output on stdout.
# usage: bad_input.sh VMM BZIMAGE PVH_ELF
set -u
vmm=$1 bzimage=$2 elf=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# check NAME EXPECTED_STATUS NEEDLE -- vmm args...
check() {
	local name=$1 want=$2 needle=$3
	shift 4
	"$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	local got=$? lines
	lines=$(wc -l <"$tmp/err")
	if [ "$got" != "$want" ]; then
		echo "FAIL $name: exit $got, want $want; stderr: $(head -c 300 "$tmp/err")"
		fail=$((fail + 1))
	elif [ "$lines" != 1 ]; then
		echo "FAIL $name: $lines lines on stderr, want 1:"; sed 's/^/    /' "$tmp/err"
		fail=$((fail + 1))
	elif ! grep -qF -- "$needle" "$tmp/err"; then
		echo "FAIL $name: stderr does not name '$needle': $(cat "$tmp/err")"
		fail=$((fail + 1))
	elif [ -s "$tmp/out" ]; then
		echo "FAIL $name: wrote to stdout: $(head -c 200 "$tmp/out")"
		fail=$((fail + 1))
	else
		echo "PASS $name: $(cat "$tmp/err")"
		pass=$((pass + 1))
	fi
}

printf 'this is not a kernel\n' >"$tmp/text"
head -c 8192 "$bzimage" >"$tmp/truncated"
: >"$tmp/empty"
# An ELF64 header for AArch64 (e_machine 183): a real foreign kernel would say the same.
cp "$elf" "$tmp/foreign.elf"
printf '\xb7\x00' | dd of="$tmp/foreign.elf" bs=1 seek=18 conv=notrunc status=none
head -c $((24 * 1024 * 1024)) /dev/urandom >"$tmp/big.initrd"
long=$(head -c 5000 /dev/zero | tr '\0' 'x')

check missing-kernel 1 "/nonexistent/bzImage" -- "$vmm" run --kernel /nonexistent/bzImage
check kernel-is-dir 1 "kernel" -- "$vmm" run --kernel "$tmp"
check empty-kernel 1 "kernel" -- "$vmm" run --kernel "$tmp/empty"
check text-kernel 1 "kernel" -- "$vmm" run --kernel "$tmp/text"
check truncated-bzimage 1 "kernel" -- "$vmm" run --kernel "$tmp/truncated"
check foreign-elf 1 "kernel" -- "$vmm" run --kernel "$tmp/foreign.elf"
check missing-initrd 1 "initrd" -- "$vmm" run --kernel "$bzimage" --initrd /nonexistent/initrd
check initrd-too-big 1 "initrd" -- "$vmm" run --kernel "$bzimage" --initrd "$tmp/big.initrd" --memory 16M
check cmdline-too-long 1 "cmdline" -- "$vmm" run --kernel "$bzimage" --cmdline "$long"
check cmdline-too-long-elf 1 "cmdline" -- "$vmm" run --kernel "$elf" --cmdline "$long"
check memory-zero 2 "--memory" -- "$vmm" run --kernel "$bzimage" --memory 0
check memory-not-size 2 "--memory" -- "$vmm" run --kernel "$bzimage" --memory lots
check memory-too-much 1 "--memory" -- "$vmm" run --kernel "$bzimage" --memory 64T
check cpus-zero 2 "--cpus" -- "$vmm" run --kernel "$bzimage" --cpus 0
check cpus-too-many 2 "--cpus" -- "$vmm" run --kernel "$bzimage" --cpus 4096
check cpus-not-number 2 "--cpus" -- "$vmm" run --kernel "$bzimage" --cpus two
check no-kernel 2 "--kernel" -- "$vmm" run
check unknown-option 2 "--frobnicate" -- "$vmm" run --kernel "$bzimage" --frobnicate
check unknown-command 2 "launch" -- "$vmm" launch
check bad-cpuid-mask 1 "--cpuid-mask" -- "$vmm" run --kernel "$bzimage" --cpuid-mask cx16,nosuchflag
check kvm-absent 1 "not present" -- "$vmm" run --kernel "$bzimage" --kvm-device "$tmp/no-kvm"
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	# The real thing: no /dev/kvm at all in this mount namespace.
	check kvm-absent-ns 1 "/dev/kvm: not present" -- unshare -m sh -c \
		'mount -t tmpfs none /dev && exec "$0" "$@"' "$vmm" run --kernel "$bzimage"
fi
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && [ -e /dev/kvm ]; then
	chmod 755 "$tmp"
	cp "$bzimage" "$tmp/k" && chmod 644 "$tmp/k"
	if [ "$(stat -c %a /dev/kvm)" = 600 ] || [ "$(stat -c %a /dev/kvm)" = 660 ]; then
		check kvm-denied 1 "permission denied" -- setpriv --reuid=65534 --regid=65534 \
			--clear-groups "$vmm" run --kernel "$tmp/k"
	fi
	cp "$bzimage" "$tmp/secret" && chmod 600 "$tmp/secret"
	check unreadable-kernel 1 "Permission denied" -- setpriv --reuid=65534 --regid=65534 \
		--clear-groups "$vmm" run --kernel "$tmp/secret"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
