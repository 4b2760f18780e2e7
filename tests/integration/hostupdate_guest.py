#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""vmm hostupdate without the kexec (issue 11): the procedure that carries VMs across a host
kernel update, run on this host with the reboot left out.

Three counting micro-guests: two with their RAM in files on tmpfs (one of them paused), one
with its RAM in a memfd. Refusals first, each leaving every VM as it was: a kexec kernel that
does not exist or is no kernel (nothing is touched before it is loaded), and a VM whose RAM
is not a file (it would be lost). Then `vmm hostupdate prepare` on the two file-backed VMs: their states
saved in place, the manifest written, their vmm processes gone. `vmm hostupdate resume` brings
both back from the manifest: the running one counts on with no gap or repeat, the paused one is
paused and counts on once resumed; a second resume finds nothing to do.

This host is not kexec'd: the test never gives prepare a kernel it could load.

usage: hostupdate_guest.py VMM MICRO_BZIMAGE   (exit 0 pass, 1 fail, 77 no /dev/kvm)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from vmmtest import Proc, check, contiguous, counts_across, pid_alive, request, summary

GUEST = 't.scenario=count t.cycles=20000000'


def hostupdate(vmm, *args):
    p = subprocess.run([vmm, 'hostupdate'] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode(errors='replace'), p.stderr.decode(errors='replace')


def counts_in(path, before_out, secs=10, after=0):
    """The COUNT lines of a restored guest's console file (joined to what it printed before),
    once it has one past after (or secs passed)."""
    end = time.monotonic() + secs
    while True:
        try:
            with open(path, 'rb') as f:
                got = counts_across(before_out, f.read())
        except OSError:
            got = []
        if (got and got[-1] > after + 2) or time.monotonic() > end:
            return got
        time.sleep(0.05)


def main():
    vmm, kernel = sys.argv[1], sys.argv[2]
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        print('SKIP: no usable /dev/kvm')
        return 77
    shm = '/dev/shm' if os.path.isdir('/dev/shm') else None
    tmp = tempfile.mkdtemp(prefix='vmm-hu-', dir=shm)
    states = os.path.join(tmp, 'states')
    socks = {n: os.path.join(tmp, n + '.sock') for n in ('a', 'b', 'c')}
    vms = {}
    for n in ('a', 'b', 'c'):
        mem = ['--memory', '64M,file=' + os.path.join(tmp, n + '.ram')] if n != 'c' else []
        vms[n] = Proc([vmm, 'run', '--kernel', kernel, '--cmdline', GUEST, '--id', 'vm-' + n,
                       '--api-sock', socks[n]] + mem, socks[n])
    check('counting', all(v.wait_count(3) for v in vms.values()))
    request(socks['b'], 'PATCH', '/vm', {'state': 'Paused'})

    def all_as_before():
        return all(request(socks[n], 'GET', '/')[1]['state'] == want
                   for n, want in (('a', 'Running'), ('b', 'Paused'), ('c', 'Running')))

    # Refusals: nothing touched.
    code, out, err = hostupdate(vmm, 'prepare', '--state-dir', states, '--kexec-kernel',
                                os.path.join(tmp, 'no-such-kernel'), socks['a'])
    check('kexec-kernel-missing', code == 1 and 'no-such-kernel' in err and
          'no VM was touched' in err, err)
    # A file that is no kernel: kexec_file_load refuses it (or refuses us: not root).
    notkernel = os.path.join(tmp, 'not-a-kernel')
    with open(notkernel, 'wb') as f:
        f.write(b'#!/bin/sh\n' * 100)
    code, out, err = hostupdate(vmm, 'prepare', '--state-dir', states, '--kexec-kernel',
                                notkernel, socks['a'])
    check('kexec-kernel-garbage', code == 1 and 'not-a-kernel' in err and
          'no VM was touched' in err and err.count('\n') == 1, err)
    code, out, err = hostupdate(vmm, 'prepare', '--state-dir', states, socks['a'], socks['c'])
    check('memfd-vm-refused', code == 1 and 'vm-c' in err and 'not in a file' in err and
          'every VM goes on' in err, err)
    # PUT /snapshot/luo, the LUO route's step: where this kernel has no /dev/liveupdate,
    # said so; a VM whose RAM is a file is told to snapshot in place. Resumed, each goes on.
    request(socks['c'], 'PATCH', '/vm', {'state': 'Paused'})
    st, body = request(socks['c'], 'PUT', '/snapshot/luo', {'session': 'vmm-test'})
    if os.path.exists('/dev/liveupdate'):
        check('luo-preserve', st == 204, body)
    else:
        check('luo-absent', st >= 400 and 'no Live Update Orchestrator' in
              body['fault_message'], body)
    request(socks['c'], 'PATCH', '/vm', {'state': 'Resumed'})
    st, body = request(socks['b'], 'PUT', '/snapshot/luo', {'session': 'vmm-test'})
    check('luo-file-ram', st == 400 and 'in place' in body['fault_message'], body)
    check('refusals-left-them', all_as_before() and
          not os.path.exists(os.path.join(states, 'manifest.json')))
    before = vms['a'].counts()[-1]
    check('still-counting', vms['a'].wait_count(before + 2))
    code, out, err = hostupdate(vmm, 'prepare', socks['a'])
    check('state-dir-required', code == 2 and '--state-dir' in err, err)

    # The procedure, the kexec left out.
    pids = {n: vms[n].p.pid for n in ('a', 'b')}
    code, out, err = hostupdate(vmm, 'prepare', '--state-dir', states, socks['a'], socks['b'])
    check('prepare', code == 0 and 'states saved' in out, out + err)
    print('  ' + ''.join(l for l in out.splitlines(True) if l.startswith('hostupdate')).strip())
    for n in ('a', 'b'):
        vms[n].finish()
        vms[n].pump(0.5)  # what the console pipe still holds
    check('processes-gone', not any(pid_alive(p) for p in pids.values()))
    with open(os.path.join(states, 'manifest.json')) as f:
        man = json.load(f)
    check('manifest', [(m['id'], m['running']) for m in man] ==
          [('vm-a', True), ('vm-b', False)], man)
    at = {n: vms[n].counts()[-1] for n in ('a', 'b')}
    check('c-untouched', request(socks['c'], 'GET', '/')[1]['state'] == 'Running')

    code, out, err = hostupdate(vmm, 'resume', '--state-dir', states)
    resume_out = out
    check('resume', code == 0 and '2 VM(s) restored' in out, out + err)
    print('  ' + ''.join(l for l in out.splitlines(True) if l.startswith('hostupdate')).strip())
    got = counts_in(os.path.join(states, 'vm-a.console'), vms['a'].out, after=at['a'])
    check('a-goes-on', got and contiguous(got, at['a'] + 1), got[:5])
    st, info = request(socks['b'], 'GET', '/')
    check('b-paused', st == 200 and info['state'] == 'Paused', info)
    request(socks['b'], 'PATCH', '/vm', {'state': 'Resumed'})
    got = counts_in(os.path.join(states, 'vm-b.console'), vms['b'].out, after=at['b'])
    check('b-goes-on', got and contiguous(got, at['b'] + 1), got[:5])
    code, out, err = hostupdate(vmm, 'resume', '--state-dir', states)
    check('second-resume-nothing', code == 1 and 'manifest.json' in err, err)

    for pid in re.findall(r'restored, pid (\d+)', resume_out):
        try:
            os.kill(int(pid), 9)
        except OSError:
            pass
    vms['c'].kill()
    shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == '__main__':
    sys.exit(main())
