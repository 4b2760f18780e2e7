#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Guest RAM in a file of its own (issue 11, the memory half of a host kernel update).

`--memory SIZE,file=PATH` (and machine-config's `mem_backing_path`) backs guest RAM with a
shared mapping of PATH. The count micro-guest runs on a tmpfs file (what a DAX file on
persistent memory is to a host kexec: memory that outlives the process):

- the file is the RAM: its size is the RAM's, and a second vmm on it is refused (locked);
- a snapshot whose `mem_file_path` is that file writes no memory ("in place"): the file keeps
  its inode, nothing is left beside it, and it takes milliseconds;
- SIGKILL, then `vmm restore STATE --mem FILE` maps the file back: the count goes on with no
  gap or repeat, and the restored VM keeps the file as its RAM (locked again, and a live
  update hands it over);
- bad input, one line each and exit 1: a file of another size, a RAM size that is not a
  multiple of 2 MiB, a directory, a missing directory, an unknown --memory option (exit 2),
  a non-string mem_backing_path on the API (400).

usage: memfile_guest.py VMM MICRO_BZIMAGE   (exit 0 pass, 1 fail, 77 no /dev/kvm)
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from vmmtest import Proc, check, contiguous, counts_across, request, summary

GUEST = 't.scenario=count t.cycles=20000000'


def run_error(vmm, args):
    """(exit status, stderr) of a vmm that must refuse to start."""
    p = subprocess.run([vmm, 'run'] + args, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30)
    return p.returncode, p.stderr.decode(errors='replace')


def main():
    vmm, kernel = sys.argv[1], sys.argv[2]
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        print('SKIP: no usable /dev/kvm')
        return 77
    shm = '/dev/shm' if os.path.isdir('/dev/shm') else None
    tmp = tempfile.mkdtemp(prefix='vmm-memfile-', dir=shm)
    sock = os.path.join(tmp, 'api.sock')
    ram = os.path.join(tmp, 'guest.ram')
    state = os.path.join(tmp, 'vm.state')

    v = Proc([vmm, 'run', '--kernel', kernel, '--memory', '64M,file=' + ram, '--cmdline',
              GUEST, '--api-sock', sock], sock)
    check('counting', v.wait_count(5), v.out[-300:] + v.p.stderr.read1(4096)
          if v.p.poll() is not None else v.out[-300:])
    check('file-is-ram', os.path.getsize(ram) == 64 << 20, os.path.getsize(ram))
    st, cfg = request(sock, 'GET', '/machine-config')
    check('api-shows-file', st == 200 and cfg.get('mem_backing_path') == ram, cfg)
    code, err = run_error(vmm, ['--kernel', kernel, '--memory', '64M,file=' + ram])
    check('second-vmm-refused', code == 1 and 'in use by another VMM' in err and
          err.count('\n') == 1, '%s %r' % (code, err))

    # In place: the state is written, the RAM file only synced.
    ino = os.stat(ram).st_ino
    request(sock, 'PATCH', '/vm', {'state': 'Paused'})
    v.pump(0.2)
    at = v.counts()[-1]
    t0 = time.monotonic()
    st, err = request(sock, 'PUT', '/snapshot/create', {'snapshot_path': state,
                                                         'mem_file_path': ram})
    took = time.monotonic() - t0
    check('snapshot-in-place', st == 204, err)
    check('in-place-same-file', os.stat(ram).st_ino == ino)
    check('in-place-nothing-beside', sorted(os.listdir(tmp)) == ['api.sock', 'guest.ram',
                                                                  'vm.state'],
          os.listdir(tmp))
    print('  in-place snapshot of a 64 MiB guest: %.1f ms' % (took * 1000))
    os.kill(v.p.pid, signal.SIGKILL)
    v.finish()

    # Back from the same file, which stays the guest's RAM.
    r = Proc([vmm, 'restore', state, '--mem', ram, '--api-sock', sock], sock)
    check('restore-goes-on', r.wait_count(at + 5) and
          contiguous(counts_across(v.out, r.out), at + 1), r.counts()[:5])
    code, err = run_error(vmm, ['--kernel', kernel, '--memory', '64M,file=' + ram])
    check('restored-holds-lock', code == 1 and 'in use by another VMM' in err, err)
    st, body = request(sock, 'PUT', '/live-update')
    check('live-update', st == 200, body)
    if st == 200:
        r.wait_count(r.counts()[-1] + 3, alive=lambda: os.path.exists('/proc/%d' %
                                                                      body['pid']))
        check('after-update', contiguous(counts_across(v.out, r.out), at + 1),
              r.counts()[-5:])
        code, err = run_error(vmm, ['--kernel', kernel, '--memory', '64M,file=' + ram])
        check('updated-holds-lock', code == 1 and 'in use by another VMM' in err, err)
        os.kill(body['pid'], signal.SIGKILL)
    r.kill()
    time.sleep(0.2)

    # Bad input.
    other = os.path.join(tmp, 'other.ram')
    with open(other, 'wb') as f:
        f.truncate(32 << 20)
    code, err = run_error(vmm, ['--kernel', kernel, '--memory', '64M,file=' + other])
    check('wrong-size', code == 1 and '33554432 bytes' in err and err.count('\n') == 1, err)
    code, err = run_error(vmm, ['--kernel', kernel, '--memory', '63M,file=' + other])
    check('not-2mib', code == 1 and 'multiple of 2 MiB' in err, err)
    code, err = run_error(vmm, ['--kernel', kernel, '--memory', '64M,file=' + tmp])
    check('directory', code == 1 and 'Is a directory' in err, err)
    code, err = run_error(vmm, ['--kernel', kernel, '--memory',
                                '64M,file=' + os.path.join(tmp, 'nodir', 'x')])
    check('missing-dir', code == 1 and 'No such file or directory' in err, err)
    # A file system that does not map files shared (procfs): said, with what would do.
    code, err = run_error(vmm, ['--kernel', kernel, '--memory', '64M,file=/proc/self/environ'])
    check('no-shared-mapping', code == 1 and 'cannot be mapped shared' in err and
          err.count('\n') == 1, err)
    code, err = run_error(vmm, ['--kernel', kernel, '--memory', '64M,file=/dev/zero'])
    check('not-regular', code == 1 and 'not a regular file' in err, err)
    code, err = run_error(vmm, ['--kernel', kernel, '--memory', '64M,size=3'])
    check('unknown-option', code == 2 and "'size=3' is not file=PATH" in err, err)
    a = Proc([vmm, '--api-sock', sock], sock)
    st, err = request(sock, 'PUT', '/machine-config', {'vcpu_count': 1, 'mem_size_mib': 64,
                                                        'mem_backing_path': 7})
    check('api-not-string', st == 400 and 'mem_backing_path' in err['fault_message'], err)
    a.kill()
    shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == '__main__':
    sys.exit(main())
