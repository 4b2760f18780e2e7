#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# retry-selftest.sh: runcases.sh's second attempt, checked without a VM. A case whose first
# attempt prints vmm's triple-fault line runs again when VMM_RETRY=1, and only then; a case
# that expects status 102 and a case that names @PMEM@ run once.
set -u
RC=$(cd "$(dirname "$0")" && pwd)/runcases.sh
T=$(mktemp -d "${TMPDIR:-/tmp}/retry-selftest.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
fail=0
check() { # $1 what, $2 output file, $3 grep -c pattern, $4 count wanted
	n=$(grep -c -- "$3" "$2")
	if [ "$n" != "$4" ]; then
		echo "FAIL $1: $n lines match '$3', want $4"
		sed 's/^/    /' "$2"
		fail=1
	else
		echo "ok   $1"
	fi
}
TF='echo "vmm: cpu 0: guest triple fault (KVM_EXIT_SHUTDOWN)"; exit 102'
cat >"$T/c.cases" <<CASES
case flaky 0
run if [ -e $T/m ]; then echo second; else touch $T/m; $TF; fi

case expects-tf 102
run echo one >>$T/tf; $TF

case kexec 0
run echo @PMEM@ >>$T/px; $TF

case healthy 0
run echo fine
CASES

VMM_RETRY=1 sh "$RC" /bin/true /tmp "$T/c.cases" >"$T/on" 2>&1
check "retried once" "$T/on" '^@@VMMTEST case=flaky retry status=102 secs=' 1
check "first attempt shown" "$T/on" '^@@R flaky|vmm: cpu 0: guest triple fault' 1
check "second attempt reported" "$T/on" '^@@VMMTEST case=flaky status=0 ' 1
check "second attempt's console" "$T/on" '^@@C flaky|second' 1
check "102 expected: once" "$T/tf" one 1
check "@PMEM@: once" "$T/px" . 1
check "no other retry" "$T/on" ' retry ' 1
check "healthy case" "$T/on" '^@@VMMTEST case=healthy status=0 ' 1

rm -f "$T/m" "$T/tf" "$T/px"
sh "$RC" /bin/true /tmp "$T/c.cases" >"$T/off" 2>&1
check "off: no retry" "$T/off" ' retry ' 0
check "off: the triple fault is the result" "$T/off" '^@@VMMTEST case=flaky status=102 ' 1
exit $fail
