#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Run one micro-guest case under `vmm run` and assert the exit status and console markers.

The guest (tests/guest/micro) takes its scenario and every expected value from the kernel
command line; this script builds that command line, runs the VMM, feeds stdin when the case
needs it, and checks what comes back. Exit 0 on success, 1 on failure, 77 when /dev/kvm is
absent (the only reason to skip).
"""
import argparse
import fcntl
import os
import pty
import random
import re
import selectors
import struct
import subprocess
import sys
import tempfile
import time
import zlib

# `vmm run` exit statuses (vmm --help).
ST_OK, ST_PANIC, ST_TRIPLE, ST_FATAL, ST_TIMEOUT = 0, 100, 102, 104, 124
CHECKS = ['bootinfo', 'cmdline', 'memmap', 'initrd', 'rsdp', 'acpi', 'madt', 'fadt', 'smp']
FAIL_CODE = 0x7f

# virtio-blk scenarios (micro/vblk.c). The device layout the VMM documents: device i (disks
# first) is a virtio-mmio window at MMIO_BASE + i * 4 KiB with GSI GSI_BASE + i.
MMIO_BASE, GSI_BASE = 0xd0000000, 16
SECTOR = 512
BLK_CHECKS = ['blk-probe', 'blk-features', 'blk-config', 'blk-queue', 'blk-read',
              'blk-read-multiseg', 'blk-read-indirect', 'blk-batch', 'blk-write', 'blk-flush',
              'blk-id', 'blk-irq', 'blk-suppress', 'blk-final']
BLK_RW_CHECKS = ['blk-write-zeroes', 'blk-discard']
BLK_ERRORS = ['read-past-end', 'read-straddle', 'read-huge-sector', 'write-past-end',
              'write-straddle', 'unknown-type', 'get-lifetime', 'secure-erase', 'read-partial',
              'write-partial', 'write-zeroes-past-end', 'write-zeroes-flags',
              'discard-past-end', 'alive']
# In the guest's order (vblk.c hostile_case); t.case=N runs only the N-th.
BLK_HOSTILE = ['addr-outside-ram', 'addr-mmio-hole', 'addr-len-overflow', 'len-beyond-ram',
               'zero-len', 'next-loop', 'next-out-of-range', 'write-then-read',
               'indirect-and-next', 'indirect-outside', 'indirect-nested', 'indirect-bad-len',
               'indirect-next-oob', 'indirect-huge', 'header-only', 'short-header',
               'head-out-of-range', 'avail-idx-jump', 'ring-outside-ram', 'queue-size-bad',
               'queue-size-big', 'bogus-registers', 'reset-inflight']
# micro/hostile.c's cases, numbered after BLK_HOSTILE's (same order as its table).
BLK_HOSTILE2 = ['queue-ready-inflight', 'queue-regs-while-ready', 'queue-after-driver-ok',
                'features-after-ok', 'status-driver-ok-early', 'status-skipped-steps',
                'status-clear-bits', 'config-widths', 'reg-widths', 'event-idx-used-event',
                'get-id-short', 'discard-many-segs', 'ring-overlap-avail-used',
                'ring-overlap-desc-avail', 'ring-overlap-desc-used', 'ring-in-acpi-area',
                'ring-in-boot-area', 'data-into-desc', 'data-into-used', 'data-into-indirect',
                'ring-at-ram-end', 'ring-straddles-ram-end', 'data-at-ram-end', 'kick-storm',
                'irq-storm-no-ack', 'desc-rewrite-race', 'reset-race', 'used-event-race']
HOSTILE_ALL = BLK_HOSTILE + BLK_HOSTILE2
# One VM runs a set; meson runs each set as its own test (smp needs --cpus 2, ramend is also
# run with RAM split at 3 GiB).
HOSTILE_SETS = {
    'classic': BLK_HOSTILE,
    'regs': BLK_HOSTILE2[:12],
    'rings': BLK_HOSTILE2[12:23],
    'ramend': BLK_HOSTILE2[20:23],
    'smp': BLK_HOSTILE2[23:],
}
BLK_LIES = ['sectors', 'salt', 'serial', 'ro', 'file']
# virtio-console scenarios (micro/vcon.c), one per VM; the console comes after one disk.
VCON_CASES = ['flood', 'emerg', 'emerg-stall', 'widths', 'tx-malformed', 'rx', 'stall']
VCON_FILLER = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQ'
VCON_FLOOD_LINES = 1536  # 96 KiB through a one-page pipe read at ~250 KB/s
VCON_EMERG_LINES = {'emerg': 512, 'emerg-stall': 2048}


def between(text, start, end):
    """The text after the first start and before the next end, or None."""
    i = text.find(start)
    if i < 0:
        return None
    j = text.find(end, i + len(start))
    return None if j < 0 else text[i + len(start):j]


def is_subsequence(small, big):
    it = iter(big)
    return all(ch in it for ch in small)


def vcon_check(case, out, token):
    """Problems with the console output of a vcon case ([] if none)."""
    if case == 'flood':
        seg = between(out, 'VCON FLOOD BEGIN\n', 'VCON FLOOD END\n')
        if seg is None:
            return ['flood: no BEGIN/END markers']
        got = seg.split('\n')
        want = ['@%08x %s' % (i, VCON_FILLER) for i in range(VCON_FLOOD_LINES)] + ['']
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                return ['flood: line %d is %r, expected %r (%d lines arrived)'
                        % (i, g[:80], w, len(got) - 1)]
        if len(got) != len(want):
            return ['flood: %d lines arrived, %d sent' % (len(got) - 1, len(want) - 1)]
        if out.count('VCON AFTER RESET %08x\n' % token) != 1:
            return ['flood: "VCON AFTER RESET %08x" not printed once after the reset' % token]
        return []
    if case in ('emerg', 'emerg-stall'):
        sent = ''.join('E%04x\n' % i for i in range(VCON_EMERG_LINES[case]))
        if case == 'emerg':
            seg = between(out, 'VCON EMERG BEGIN\n', 'VCON EMERG END\n')
            if seg != sent:
                return ['emerg: %s bytes arrived, not the %d sent in order'
                        % ('no' if seg is None else len(seg), len(sent))]
        else:
            seg = between(out, 'VCON-PAUSE 1\n', 'VCON TX SYNC\n')
            if seg is None:
                return ['emerg-stall: no PAUSE/SYNC markers']
            if not is_subsequence(seg, sent):
                return ['emerg-stall: the %d bytes that arrived are not the sent ones in order'
                        % len(seg)]
            if not seg.startswith(sent[:3000]):
                return ['emerg-stall: the bytes sent before stdout filled up did not all '
                        'arrive']
            if len(seg) >= len(sent):
                return ['emerg-stall: all %d bytes arrived: the reader never stalled the VMM'
                        % len(sent)]
            if between(out, 'VCON TX SYNC\n', 'VCON EMERG END\n') != 'EMERG AFTER STALL\n':
                return ['emerg-stall: the emergency line after the stall is not intact']
        if 'VCON TX AFTER EMERG\n' not in out:
            return ['%s: the transmitq does not print after the flood' % case]
        return []
    want = {'widths': ['EMW:abcdef\nVCON WIDTHS DONE\n'],
            'tx-malformed': ['VCON TX OK\n'],
            'rx': ['VCON RX DONE\n'],
            'stall': ['VCON AFTER TOGGLE\n', 'VCON AFTER RESET\n']}[case]
    problems = ['%s: %r not printed' % (case, w) for w in want if w not in out]
    if case == 'tx-malformed' and 'BADTX' in out:
        problems.append('tx-malformed: bytes of a malformed transmit chain were printed')
    return problems


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


def sector_pattern(s, salt):
    """Sector s as the guest expects it: word w is (s * 0x100000001) ^ salt ^ (w << 56)."""
    base = ((s << 32) | s) ^ salt
    return struct.pack('<64Q', *[(base ^ (w << 56)) & 0xffffffffffffffff for w in range(64)])


class Disk:
    """One --disk: its image, what the guest is told, and what the file must hold afterwards."""

    def __init__(self, index, tmpdir, sectors, ro, rng):
        self.index, self.sectors, self.ro = index, sectors, ro
        self.path = os.path.join(tmpdir, 'disk%d.img' % index)
        self.salt = rng.getrandbits(64)
        self.wsalt = rng.getrandbits(64)
        # Disk 1 gets a serial of exactly 20 bytes: no NUL terminator in GET_ID.
        self.serial = ('micro-d%d-%08x' % (index, rng.getrandbits(32)) if index != 1
                       else 'SN-%017d' % rng.getrandbits(48))[:20]
        self.wstart, self.wcount = 100 + index, (0 if ro else 20)
        self.zstart, self.zcount = 200, (0 if ro else 12)
        self.dstart, self.dcount = 300, (0 if ro else 16)
        with open(self.path, 'wb') as f:
            f.write(b''.join(sector_pattern(s, self.salt) for s in range(sectors)))

    def tokens(self, lie=None, write=True):
        i, t = self.index, []
        lie = lie if i == 0 else None
        t += ['t.sectors%d=%d' % (i, self.sectors + (1 if lie == 'sectors' else 0)),
              't.salt%d=0x%x' % (i, self.salt ^ (1 if lie == 'salt' else 0)),
              't.serial%d=%s' % (i, self.serial + ('x' if lie == 'serial' else '')),
              't.ro%d=%d' % (i, 0 if lie == 'ro' else int(self.ro))]
        if write:
            # With lie 'file' the guest writes (and reads back) another pattern than the one
            # the host then looks for: the host-side check must catch it.
            t += ['t.wstart%d=%d' % (i, self.wstart), 't.wcount%d=%d' % (i, max(self.wcount, 1)),
                  't.wsalt%d=0x%x' % (i, self.wsalt ^ (1 if lie == 'file' else 0)),
                  't.zstart%d=%d' % (i, self.zstart), 't.zcount%d=%d' % (i, self.zcount),
                  't.dstart%d=%d' % (i, self.dstart), 't.dcount%d=%d' % (i, self.dcount)]
        return t

    def spec(self, io, cache):
        s = self.path + (',ro' if self.ro else '')
        s += (',io=' + io) if io else ''
        s += (',cache=' + cache) if cache else ''
        return s + ',serial=' + self.serial

    def verify(self, wrote):
        """Problems with the image after the run ([] if none)."""
        with open(self.path, 'rb') as f:
            data = f.read()
        if len(data) != self.sectors * SECTOR:
            return ['d%d: image is %d bytes, was %d' % (self.index, len(data),
                                                        self.sectors * SECTOR)]
        zero = bytes(SECTOR)
        for s in range(self.sectors):
            got = data[s * SECTOR:(s + 1) * SECTOR]
            old = sector_pattern(s, self.salt)
            if wrote and self.wstart <= s < self.wstart + self.wcount:
                want, what = [sector_pattern(s, self.wsalt)], 'the written pattern'
            elif wrote and self.zstart <= s < self.zstart + self.zcount:
                want, what = [zero], 'zeroes (WRITE_ZEROES)'
            elif wrote and self.dstart <= s < self.dstart + self.dcount:
                want, what = [old, zero], 'the old data or zeroes (DISCARD)'
            else:
                want, what = [old], 'the original pattern'
            if got not in want:
                return ['d%d: sector %d does not hold %s' % (self.index, s, what)]
        return []


class Run:
    def __init__(self, status, out, err, elapsed):
        self.status, self.out, self.err, self.elapsed = status, out, err, elapsed


class Io:
    """How run_vmm talks to the VMM beyond collecting its output.

    feeds: (marker, bytes): write bytes to stdin once marker shows up on stdout.
    pipe_size: make stdout a pipe of this many bytes (F_SETPIPE_SZ) instead of the default.
    slow: (bytes, seconds): read at most that many bytes of stdout per interval.
    pause: on each new "VCON-PAUSE n" line, stop reading stdout for this many seconds, saying
    so with "Pn\n" on stdin at the start and "GOn\n" at the end (the guest waits for them on
    its console input).
    """

    def __init__(self, feeds=(), pipe_size=0, slow=None, pause=0.0):
        self.feeds, self.pipe_size, self.slow, self.pause = list(feeds), pipe_size, slow, pause


F_SETPIPE_SZ = 1031


# A vmm built with -Db_sanitize=address,undefined: any report ends it with an error (UBSan
# only warns by default), and the runner fails the case on the report itself too, whatever
# the exit status. Settings the caller exported win.
SANITIZER_ENV = {
    'ASAN_OPTIONS': 'halt_on_error=1:abort_on_error=0:exitcode=66:detect_leaks=1',
    'UBSAN_OPTIONS': 'halt_on_error=1:print_stacktrace=1:exitcode=67',
}
SANITIZER_REPORTS = ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:',
                     'WARNING: ThreadSanitizer', 'SUMMARY: UndefinedBehaviorSanitizer']


def sanitizer_reports(err):
    """The stderr lines that are sanitizer reports."""
    return [line for line in err.splitlines() if any(m in line for m in SANITIZER_REPORTS)]


def run_vmm(argv, wall, feed=None, tty=False, io=None):
    """Run the VMM; when `feed` is given, write it to the guest once "READY" shows up."""
    io = io or Io()
    env = dict(os.environ)
    for k, v in SANITIZER_ENV.items():
        env.setdefault(k, v)
    feeds = list(io.feeds) + ([(b'READY', feed)] if feed is not None else [])
    master = slave = out_w = None
    if tty:
        master, slave = pty.openpty()
        stdin = stdout = slave
    else:
        stdin = subprocess.PIPE if feeds or io.pause else subprocess.DEVNULL
        stdout = subprocess.PIPE
        if io.pipe_size:
            out_r, out_w = os.pipe()
            fcntl.fcntl(out_r, F_SETPIPE_SZ, io.pipe_size)
            stdout = out_w
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env)
    if tty:
        os.close(slave)
        out_fd = master
    elif out_w is not None:
        os.close(out_w)
        out_fd = out_r
    else:
        out_fd = p.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(out_fd, selectors.EVENT_READ, 'out')
    sel.register(p.stderr.fileno(), selectors.EVENT_READ, 'err')
    out, err = b'', b''
    open_fds = 2
    killed = False
    paused_until, pauses, go = 0.0, 0, []
    next_read = 0.0

    def to_guest(data):
        if tty:
            os.write(master, data)
        else:
            p.stdin.write(data)
            p.stdin.flush()

    while open_fds:
        now = time.monotonic()
        left = wall - (now - t0)
        if left <= 0:
            p.kill()
            killed = True
            break
        # Not reading stdout (a pause, or the slow reader's interval): only stderr.
        # (out_fd is -1 once stdout reached its end.)
        hold = now < paused_until or now < next_read
        if out_fd >= 0 and hold and out_fd in sel.get_map():
            sel.unregister(out_fd)
        elif out_fd >= 0 and not hold and out_fd not in sel.get_map():
            sel.register(out_fd, selectors.EVENT_READ, 'out')
        timeout = min(left, 0.5, max(0.0, max(paused_until, next_read) - now) or 0.5)
        for key, _ in sel.select(timeout=timeout):
            want = io.slow[0] if key.data == 'out' and io.slow else 65536
            try:
                data = os.read(key.fd, want)
            except OSError:  # EIO on a pty once the VMM closed it
                data = b''
            if not data:
                sel.unregister(key.fd)
                open_fds -= 1
                if key.data == 'out':
                    out_fd = -1
                continue
            if key.data == 'out':
                out += data
                if io.slow:
                    next_read = time.monotonic() + io.slow[1]
            else:
                err += data
        for m, data in list(feeds):
            if m in out:
                feeds.remove((m, data))
                to_guest(data)
        if go and time.monotonic() >= paused_until:
            to_guest(go.pop(0))
        # The whole marker line first: with a one-page pipe, a byte left in it makes the
        # pipe "not writable" (POLLOUT needs a free page), and the UART would drop the rest.
        marks = re.findall(rb'VCON-PAUSE (\d)\r\n', out)
        if io.pause and len(marks) > pauses and not go:
            pauses += 1
            paused_until = time.monotonic() + io.pause
            to_guest(b'P' + marks[-1] + b'\n')  # the guest waits for this before it floods
            go.append(b'GO' + marks[-1] + b'\n')
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
    if out_w is not None:
        os.close(out_r)
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
                             'echo-tty', 'spin', 'blk', 'blk-errors', 'blk-hostile', 'vcon'])
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
    ap.add_argument('--lie', choices=['mem', 'cpus', 'initrd'] + BLK_LIES,
                    help='tell the guest a wrong expected value: the check must then fail')
    ap.add_argument('--disks', type=int, default=1, help='blk*: number of disks')
    ap.add_argument('--ro', type=int, action='append', default=[],
                    help='blk: disk index to attach read-only (repeatable)')
    ap.add_argument('--sectors', type=int, default=2055, help='blk*: sectors of disk 0')
    ap.add_argument('--io', choices=['uring', 'aio', 'sync'], help='blk*: --disk io=')
    ap.add_argument('--cache', choices=['none', 'writeback'], help='blk*: --disk cache=')
    ap.add_argument('--event-idx', action='store_true', help='blk: negotiate EVENT_IDX')
    ap.add_argument('--acpi-off', action='store_true',
                    help='blk*: pass acpi=off; the VMM must then list the devices on the '
                         'command line (virtio_mmio.device=)')
    ap.add_argument('--hostile-case', choices=HOSTILE_ALL, help='blk-hostile: only this one')
    ap.add_argument('--hostile-set', choices=sorted(HOSTILE_SETS), default='classic',
                    help='blk-hostile: which cases (default: classic, micro/vblk.c\'s)')
    ap.add_argument('--vcon', choices=VCON_CASES, help='vcon: the case (--console virtio)')
    a = ap.parse_args()
    if a.lie in BLK_LIES and a.case != 'blk':
        ap.error('--lie %s is for --case blk' % a.lie)
    if a.lie == 'ro' and 0 not in a.ro:
        ap.error('--lie ro needs --ro 0')

    if not os.path.exists('/dev/kvm'):
        print('SKIP: /dev/kvm is absent on this machine')
        return 77

    mem = parse_size(a.memory)
    tokens = ['t.scenario=' + ('echo' if a.case == 'echo-tty' else a.case)]
    want_status, markers, feed = ST_OK, [], None
    initrd = None
    # Disk images live on a real file system: cache=none is O_DIRECT, which tmpfs refuses.
    tmp = tempfile.TemporaryDirectory(prefix='micro-', dir='/var/tmp')
    disks, host_lie = [], False
    io, console_virtio, vcon_token = Io(), False, 0

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
    elif a.case.startswith('blk'):
        rng = random.Random()
        ndisks = a.disks if a.case == 'blk' else 1
        disks = [Disk(i, tmp.name, a.sectors + 64 * i, i in a.ro, rng) for i in range(ndisks)]
        tokens += ['t.ndev=%d' % ndisks, 't.mmio_base=0x%x' % MMIO_BASE,
                   't.gsi_base=%d' % GSI_BASE]
        for d in disks:
            tokens += d.tokens(a.lie, write=(a.case == 'blk'))
            tokens += ['t.queues%d=%d' % (d.index, a.cpus)]
        if a.event_idx:
            tokens += ['t.event_idx=1']
        if a.acpi_off:
            tokens = ['acpi=off'] + tokens + ['t.cmdline_devs=1']
        if a.case == 'blk':
            markers = ['MICRO PASS blk-discover']
            for d in disks:
                names = BLK_CHECKS + ([] if d.ro else BLK_RW_CHECKS)
                markers += ['MICRO PASS %s d%d' % (c, d.index) for c in names]
            if ndisks > 1:
                markers += ['MICRO PASS blk-concurrent']
        elif a.case == 'blk-errors':
            markers = ['MICRO PASS blk-err-' + c for c in BLK_ERRORS]
        else:
            names = [a.hostile_case] if a.hostile_case else HOSTILE_SETS[a.hostile_set]
            markers = ['MICRO PASS blk-hostile-' + c for c in names]
            if a.hostile_case:
                tokens += ['t.case=%d' % HOSTILE_ALL.index(a.hostile_case)]
            else:
                tokens += ['t.mask=0x%x' % sum(1 << HOSTILE_ALL.index(c) for c in names)]
        markers.append('MICRO DONE pass')
        if a.lie in ('sectors', 'salt', 'serial', 'ro'):
            failing = {'sectors': 'blk-config', 'salt': 'blk-read', 'serial': 'blk-id',
                       'ro': 'blk-features'}[a.lie]
            want_status = debug_exit_status(FAIL_CODE)
            markers = ['MICRO FAIL %s d0' % failing, 'MICRO DONE fail']
        host_lie = a.lie == 'file'

    elif a.case == 'vcon':
        if not a.vcon:
            ap.error('--case vcon needs --vcon')
        rng = random.Random()
        disks = [Disk(0, tmp.name, a.sectors, False, rng)]
        vcon_token = rng.getrandbits(32)
        tokens += ['t.ndev=2', 't.ndisk=1', 't.mmio_base=0x%x' % MMIO_BASE,
                   't.gsi_base=%d' % GSI_BASE, 't.vcon=' + a.vcon, 't.token=0x%x' % vcon_token]
        tokens += disks[0].tokens(None, write=False)
        console_virtio = True
        markers = ['MICRO PASS vcon-discover', 'MICRO PASS vcon-' + a.vcon, 'MICRO DONE pass']
        if a.vcon == 'flood':
            tokens += ['t.vcon_slow=1', 't.vcon_lines=%d' % VCON_FLOOD_LINES]
            io = Io(pipe_size=4096, slow=(1024, 0.004))
        elif a.vcon in VCON_EMERG_LINES:
            tokens += ['t.vcon_lines=%d' % VCON_EMERG_LINES[a.vcon]]
            if a.vcon == 'emerg-stall':
                # Two pages: POLLOUT (a free page) holds for the first ~4 KiB; with one
                # page a single unread byte makes the pipe "full" for poll().
                io = Io(pipe_size=8192, pause=1.0)
        elif a.vcon == 'rx':
            io = Io(feeds=[(b'VCON-RX-READY', b'hello world\n')])
        elif a.vcon == 'stall':
            io = Io(pipe_size=4096, pause=0.5)

    cmdline = build_cmdline(tokens)
    argv = [a.vmm, 'run', '--kernel', a.kernel, '--cmdline', cmdline, '--cpus', str(a.cpus),
            '--memory', a.memory]
    if initrd:
        argv += ['--initrd', initrd]
    if a.timeout:
        argv += ['--timeout', str(a.timeout)]
    for d in disks:
        argv += ['--disk', d.spec(a.io, a.cache)]
    if console_virtio:
        argv += ['--console', 'virtio']
    print('$ ' + ' '.join("'%s'" % x if ' ' in x else x for x in argv), flush=True)

    r = run_vmm(argv, a.wall, feed=feed, tty=(a.case == 'echo-tty'), io=io)
    print('--- guest console (%.3f s) ---' % r.elapsed)
    print(r.out, end='' if r.out.endswith('\n') else '\n')
    if r.err:
        print('--- vmm stderr ---')
        print(r.err, end='' if r.err.endswith('\n') else '\n')
    print('---')

    ok = True
    for line in sanitizer_reports(r.err):
        print('FAIL: sanitizer report: ' + line.strip())
        ok = False
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
    if not a.lie or host_lie:
        for line in r.out.splitlines():
            if 'MICRO FAIL' in line:
                print('FAIL: guest reported "%s"' % line.strip())
                ok = False
    if a.case == 'vcon':
        for p in vcon_check(a.vcon, r.out, vcon_token):
            print('FAIL: ' + p)
            ok = False
    # What the guest did must be in the files (and nothing else); the errors and hostile
    # scenarios write nothing that may land.
    # (A guest told a wrong expectation stops early: what it wrote is then unknown.)
    problems = []
    for d in disks if not a.lie or host_lie else []:
        problems += d.verify(wrote=(a.case == 'blk'))
    if host_lie:
        if problems:
            print('expected: the host check caught the wrong pattern: %s' % problems[0])
        else:
            print('FAIL: the host check did not notice the guest wrote another pattern')
            ok = False
    else:
        for p in problems:
            print('FAIL: ' + p)
            ok = False
    print('PASS' if ok else 'FAILED')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
