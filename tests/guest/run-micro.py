#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Run one micro-guest case under `vmm run` and assert the exit status and console markers.

The guest (tests/guest/micro) takes its scenario and every expected value from the kernel
command line; this script builds that command line, runs the VMM, feeds stdin when the case
needs it, and checks what comes back. Exit 0 on success, 1 on failure, 77 when /dev/kvm is
absent (the only reason to skip).
"""
import argparse
import os
import pty
import random
import selectors
import subprocess
import sys
import tempfile
import time
import zlib

# `vmm run` exit statuses (vmm --help).
ST_OK, ST_PANIC, ST_TRIPLE, ST_FATAL, ST_TIMEOUT = 0, 100, 102, 104, 124
CHECKS = ['bootinfo', 'cmdline', 'memmap', 'initrd', 'rsdp', 'acpi', 'madt', 'fadt', 'smp']
FAIL_CODE = 0x7f


def parse_size(s):
    mult = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}
    if s[-1].upper() in mult:
        return int(s[:-1]) * mult[s[-1].upper()]
    return int(s)


def debug_exit_status(v):
    return ((v << 1) | 1) & 0xff


def build_cmdline(tokens):
    # t.cmdlen is the length of the whole command line, itself included: fixed at 4 digits so
    # that writing it does not change it. "t.end" last proves nothing was cut or appended.
    line = ' '.join(tokens + ['t.cmdlen=0000', 't.end'])
    return line.replace('t.cmdlen=0000', 't.cmdlen=%04d' % len(line))


class Run:
    def __init__(self, status, out, err, elapsed):
        self.status, self.out, self.err, self.elapsed = status, out, err, elapsed


def run_vmm(argv, wall, feed=None, tty=False):
    """Run the VMM; when `feed` is given, write it to the guest once "READY" shows up."""
    master = slave = None
    if tty:
        master, slave = pty.openpty()
        stdin = stdout = slave
    else:
        stdin = subprocess.PIPE if feed is not None else subprocess.DEVNULL
        stdout = subprocess.PIPE
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    if tty:
        os.close(slave)
        out_fd = master
    else:
        out_fd = p.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(out_fd, selectors.EVENT_READ, 'out')
    sel.register(p.stderr.fileno(), selectors.EVENT_READ, 'err')
    out, err, fed = b'', b'', False
    open_fds = 2
    killed = False
    while open_fds:
        left = wall - (time.monotonic() - t0)
        if left <= 0:
            p.kill()
            killed = True
            break
        for key, _ in sel.select(timeout=min(left, 0.5)):
            try:
                data = os.read(key.fd, 65536)
            except OSError:  # EIO on a pty once the VMM closed it
                data = b''
            if not data:
                sel.unregister(key.fd)
                open_fds -= 1
                continue
            if key.data == 'out':
                out += data
            else:
                err += data
        if feed is not None and not fed and b'READY' in out:
            fed = True
            if tty:
                os.write(master, feed)
            else:
                p.stdin.write(feed)
                p.stdin.flush()
        if p.poll() is not None and not tty and open_fds == 0:
            break
        if tty and p.poll() is not None:
            # The slave side is closed once the VMM exits; drain what is left.
            try:
                while True:
                    data = os.read(master, 65536)
                    if not data:
                        break
                    out += data
            except OSError:
                pass
            break
    status = p.wait()
    if master is not None:
        os.close(master)
    if killed:
        status = None
    return Run(status, out.decode(errors='replace').replace('\r', ''),
               err.decode(errors='replace'), time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--vmm', required=True)
    ap.add_argument('--kernel', required=True)
    ap.add_argument('--case', required=True,
                    choices=['check', 'exit', 'panic', 'triple', 'hang', 'reset', 'echo',
                             'echo-tty', 'spin'])
    ap.add_argument('--cpus', type=int, default=1)
    ap.add_argument('--memory', default='256M')
    ap.add_argument('--initrd-size', type=int, default=0,
                    help='random initrd of this many bytes (0: none)')
    ap.add_argument('--code', type=int, default=0, help='exit: debug-exit value')
    ap.add_argument('--timeout', type=int, default=0, help='vmm --timeout')
    ap.add_argument('--n', type=int, default=100000, help='spin: instructions')
    ap.add_argument('--sleep-port', type=lambda v: int(v, 0), default=0x600,
                    help='check: the FADT sleep control port the VMM must describe')
    ap.add_argument('--wall', type=float, default=60.0, help='kill the VMM after this long')
    ap.add_argument('--lie', choices=['mem', 'cpus', 'initrd'],
                    help='tell the guest a wrong expected value: the check must then fail')
    a = ap.parse_args()

    if not os.path.exists('/dev/kvm'):
        print('SKIP: /dev/kvm is absent on this machine')
        return 77

    mem = parse_size(a.memory)
    tokens = ['t.scenario=' + ('echo' if a.case == 'echo-tty' else a.case)]
    want_status, markers, feed = ST_OK, [], None
    initrd = None
    tmp = tempfile.TemporaryDirectory(prefix='micro-')

    if a.case == 'check':
        guest_mem = mem + (1 << 30) if a.lie == 'mem' else mem
        guest_cpus = a.cpus + 1 if a.lie == 'cpus' else a.cpus
        tokens += ['t.mem=%d' % guest_mem, 't.cpus=%d' % guest_cpus,
                   't.sleep_port=0x%x' % a.sleep_port]
        if a.initrd_size:
            data = bytes(random.getrandbits(8) for _ in range(a.initrd_size))
            initrd = os.path.join(tmp.name, 'initrd.bin')
            with open(initrd, 'wb') as f:
                f.write(data)
            crc = zlib.crc32(data)
            if a.lie == 'initrd':
                crc ^= 1
            tokens += ['t.initrd_len=%d' % len(data), 't.initrd_crc=0x%08x' % crc]
        if a.lie:
            failing = {'mem': 'memmap', 'cpus': 'madt', 'initrd': 'initrd'}[a.lie]
            want_status = debug_exit_status(FAIL_CODE)
            markers = ['MICRO FAIL ' + failing, 'MICRO DONE fail']
        else:
            markers = ['MICRO PASS ' + c for c in CHECKS] + ['MICRO DONE pass']
    elif a.case == 'exit':
        tokens += ['t.code=%d' % a.code]
        want_status = debug_exit_status(a.code)
        markers = ['MICRO EXIT %d' % a.code]
    elif a.case == 'panic':
        want_status, markers = ST_PANIC, ['MICRO PANIC']
    elif a.case == 'triple':
        want_status, markers = ST_TRIPLE, ['MICRO TRIPLE']
    elif a.case == 'hang':
        want_status, markers = ST_TIMEOUT, ['MICRO HANG']
        a.timeout = a.timeout or 1
    elif a.case == 'reset':
        markers = ['MICRO RESET']
    elif a.case in ('echo', 'echo-tty'):
        feed = b'hello micro guest\nSecond line 42\nquit\n'
        if a.case == 'echo-tty':
            feed = feed.replace(b'\n', b'\r')
        markers = ['READY', 'HELLO MICRO GUEST', 'SECOND LINE 42', 'MICRO ECHO BYE']
    elif a.case == 'spin':
        tokens += ['t.n=%d' % a.n]
        markers = ['MICRO SPIN done']

    cmdline = build_cmdline(tokens)
    argv = [a.vmm, 'run', '--kernel', a.kernel, '--cmdline', cmdline, '--cpus', str(a.cpus),
            '--memory', a.memory]
    if initrd:
        argv += ['--initrd', initrd]
    if a.timeout:
        argv += ['--timeout', str(a.timeout)]
    print('$ ' + ' '.join("'%s'" % x if ' ' in x else x for x in argv), flush=True)

    r = run_vmm(argv, a.wall, feed=feed, tty=(a.case == 'echo-tty'))
    print('--- guest console (%.3f s) ---' % r.elapsed)
    print(r.out, end='' if r.out.endswith('\n') else '\n')
    if r.err:
        print('--- vmm stderr ---')
        print(r.err, end='' if r.err.endswith('\n') else '\n')
    print('---')

    ok = True
    if r.status is None:
        print('FAIL: the VMM was still running after %.0f s and was killed' % a.wall)
        ok = False
    elif r.status != want_status:
        print('FAIL: exit status %d, expected %d' % (r.status, want_status))
        ok = False
    for m in markers:
        if m not in r.out:
            print('FAIL: console lacks "%s"' % m)
            ok = False
    if not a.lie:
        for line in r.out.splitlines():
            if 'MICRO FAIL' in line:
                print('FAIL: guest reported "%s"' % line.strip())
                ok = False
    print('PASS' if ok else 'FAILED')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
