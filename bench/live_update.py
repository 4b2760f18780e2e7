#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Live update, snapshot and restore of vmm against QEMU's cpr-transfer, file migration and
restore, on the same micro-guest (issue 9). Run by bench/live_update.sh, which finds or builds
what this needs; see bench/README.md for what every number means.

For each guest size, one vmm and then one QEMU:
  - start the gap guest (tests/guest/micro/gap.c; it touches all of its RAM first) and watch
    its beat from the host through guest RAM's memfd (gapwatch watch);
  - one unrecorded update, then N updates (vmm: PUT /live-update; QEMU: a new QEMU with
    -incoming main+cpr channels, migrate-set-parameters mode=cpr-transfer, migrate), each
    followed by a pause and a '?' on the console, which the guest answers with the largest TSC
    gap since the previous '?'; the same number of intervals without an update (noise floor);
  - snapshots of the paused VM (vmm: PUT /snapshot/create; QEMU: migrate to file:), then, for
    QEMU, one more of the running VM (QEMU resumes on -incoming only a VM saved running);
  - restores, vmm and QEMU alternated, each timed from exec to the restored guest's first
    loop iteration (gapwatch first).

Prints Markdown: one table per size and a summary.
"""
import argparse
import ctypes
import json
import mmap
import os
import platform
import re
import shlex
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

PR_SET_CHILD_SUBREAPER = 36
GAP_MAGIC = 0x3154414542504147
STALL_THRESHOLD_US = 200


class BenchError(Exception):
    pass


# Every VMM process we started or adopted (a live update's new process is an orphan we reap as
# the subreaper): killed on the way out, whatever happened.
LIVE = set()


def guest_cmdline(cfg):
    return 't.scenario=gap t.tsc_khz=%d t.touch=1 t.poll_us=1000 t.over_us=100' % cfg.tsc_khz


def now_ns():
    return time.monotonic_ns()


def pct(vals, p):
    """Nearest-rank percentile: the smallest value with at least p% of them at or below it
    (p99 of 50 values is their maximum)."""
    v = sorted(vals)
    k = max(0, -(-len(v) * p // 100) - 1)
    return v[k]


def log(msg):
    print('live_update: ' + msg, file=sys.stderr, flush=True)


# ---- plumbing ------------------------------------------------------------------------------

class Lines:
    """Lines read from fd by a thread, each with the CLOCK_MONOTONIC time it was read."""

    def __init__(self, fd, tee=None):
        self.lines = []
        self.cv = threading.Condition()
        self.tee = tee
        self.t = threading.Thread(target=self._run, args=(fd,), daemon=True)
        self.t.start()

    def _run(self, fd):
        buf = b''
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b''
            if not chunk:
                break
            if self.tee:
                self.tee.write(chunk)
                self.tee.flush()
            buf += chunk
            t = now_ns()
            with self.cv:
                while b'\n' in buf:
                    line, buf = buf.split(b'\n', 1)
                    self.lines.append((t, line.rstrip(b'\r').decode(errors='replace')))
                self.cv.notify_all()

    def wait(self, regex, start, secs):
        """The first line at index >= start matching regex: (index, time, match)."""
        rx = re.compile(regex)
        end = time.monotonic() + secs
        i = start
        with self.cv:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i][1])
                    if m:
                        return i, self.lines[i][0], m
                    i += 1
                left = end - time.monotonic()
                if left <= 0:
                    tail = '\n'.join(l for _, l in self.lines[-5:])
                    raise BenchError('no line matching %r in %d s; last lines:\n%s'
                                     % (regex, secs, tail))
                self.cv.wait(left)

    def mark(self):
        with self.cv:
            return len(self.lines)


def request(sock, method, path, body=None, timeout=120):
    """One HTTP request on vmm's API socket: (status, JSON body or None)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock)
    data = json.dumps(body).encode() if body is not None else b''
    s.sendall(('%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n'
               'Content-Length: %d\r\n\r\n' % (method, path, len(data))).encode() + data)
    buf = b''
    while b'\r\n\r\n' not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    head, _, rest = buf.partition(b'\r\n\r\n')
    m = re.search(rb'Content-Length: *(\d+)', head, re.I)
    want = int(m.group(1)) if m else 0
    while len(rest) < want:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    s.close()
    return int(head.split(b' ')[1]), (json.loads(rest[:want]) if want else None)


def api(sock, method, path, body=None, ok=(200, 204)):
    st, rb = request(sock, method, path, body)
    if st not in ok:
        raise BenchError('%s %s: %s %s' % (method, path, st, rb))
    return rb


class QMP:
    def __init__(self, path, secs=30, alive=None):
        end = time.monotonic() + secs
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > end or (alive and not alive()):
                    raise BenchError('QMP socket %s does not answer' % path)
                time.sleep(0.001)
        self.s.settimeout(300)
        self.f = self.s.makefile('rwb', buffering=0)
        json.loads(self.f.readline())
        self.cmd('qmp_capabilities')

    def cmd(self, name, **args):
        msg = {'execute': name}
        if args:
            msg['arguments'] = args
        self.f.write(json.dumps(msg).encode() + b'\n')
        while True:
            line = self.f.readline()
            if not line:
                raise BenchError('QMP %s: connection closed' % name)
            r = json.loads(line)
            if 'error' in r:
                raise BenchError('QMP %s: %s' % (name, r['error'].get('desc')))
            if 'return' in r:
                return r['return']
            # an event, or a greeting seen late: not the answer

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def reap(pid, secs=30):
    """Exit status of pid: our child, or an orphan we are the subreaper of."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            got, st = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if got == pid:
            LIVE.discard(pid)
            return os.waitstatus_to_exitcode(st)
        time.sleep(0.002)
    return None


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    reap(pid, 10)


def pid_alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(') ')[1][0] != 'Z'
    except OSError:
        return False


def unix_listening(path):
    with open('/proc/net/unix') as f:
        next(f)
        for line in f:
            p = line.split()
            if len(p) >= 8 and p[7] == path and int(p[3], 16) & 0x10000:
                return True
    return False


def memfd_of(pid, name, size):
    """/proc/PID/fd/N of pid's memfd whose name contains name and whose size is size."""
    d = '/proc/%d/fd' % pid
    for fd in os.listdir(d):
        try:
            link = os.readlink(os.path.join(d, fd))
            if 'memfd:' in link and name in link and os.stat(os.path.join(d, fd)).st_size == size:
                return os.path.join(d, fd)
        except OSError:
            pass
    raise BenchError('pid %d has no memfd %r of %d bytes' % (pid, name, size))


class Beat:
    """The guest's beat record, read through our own mapping of its RAM memfd."""

    def __init__(self, path, off):
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        base = off & ~(mmap.PAGESIZE - 1)
        self.m = mmap.mmap(fd, 2 * mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ, offset=base)
        os.close(fd)
        self.o = off - base
        if self.read()[0] != GAP_MAGIC:
            raise BenchError('no beat record at 0x%x of %s' % (off, path))

    def read(self):
        return struct.unpack_from('<QQ', self.m, self.o)

    def tsc(self):
        return self.read()[1]


def cpu_ticks():
    """utime + stime of every process: {pid: (name, ticks)}."""
    out = {}
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                s = f.read()
        except OSError:
            continue
        name = s[s.index('(') + 1:s.rindex(')')]
        f = s[s.rindex(')') + 2:].split()
        out[int(d)] = (name, int(f[11]) + int(f[12]), int(f[1]))
    return out


class OtherLoad:
    """What else ran on the machine meanwhile: every process's CPU time, sampled every few
    seconds, minus ours (descendants of this process, a live update's orphans included)."""

    def __init__(self, every=2.0):
        self.acc = {}
        self.prev = cpu_ticks()
        self.t0 = time.monotonic()
        self.done = threading.Event()
        self.t = threading.Thread(target=self._run, args=(every,), daemon=True)
        self.t.start()

    def _run(self, every):
        while not self.done.wait(every):
            self.sample()

    def sample(self):
        cur = cpu_ticks()
        for pid, (name, t, ppid) in cur.items():
            a = self.acc.setdefault(pid, [name, 0, ppid])
            if pid in self.prev and self.prev[pid][0] == name:
                a[1] += t - self.prev[pid][1]
        self.prev = cur

    def busy(self):
        """Processes not ours that took more than 10% of a CPU over the whole run."""
        self.done.set()
        self.t.join()
        self.sample()
        secs = time.monotonic() - self.t0
        ours, grew = {os.getpid()}, True
        while grew:
            grew = False
            for pid, (_, _, ppid) in self.acc.items():
                if ppid in ours and pid not in ours:
                    ours.add(pid)
                    grew = True
        hz = os.sysconf('SC_CLK_TCK')
        return ['%s (pid %d) %.0f%%' % (name, pid, 100 * t / hz / secs)
                for pid, (name, t, _) in sorted(self.acc.items())
                if pid not in ours and t / hz / secs > 0.1]


def file_sizes(path):
    st = os.stat(path)
    return st.st_size, st.st_blocks * 512


# ---- the two VMMs --------------------------------------------------------------------------

class Session:
    """One VMM with the gap guest: console pipes, the beat, gapwatch."""
    name = '?'

    def __init__(self, cfg, mem_mib, tag):
        self.cfg = cfg
        self.mem = mem_mib << 20
        self.mem_mib = mem_mib
        self.tag = tag
        self.work = cfg.work
        self.in_r, self.in_w = os.pipe()
        self.out_r, self.out_w = os.pipe()
        for fd in (self.in_w, self.out_r):
            os.set_inheritable(fd, False)
        self.err = open(os.path.join(self.work, '%s.stderr' % tag), 'ab')
        self.console = Lines(self.out_r, tee=open(os.path.join(self.work, '%s.console' % tag),
                                                  'ab'))
        self.watch = None
        self.stalls = None

    def spawn(self, argv):
        p = subprocess.Popen(argv, stdin=self.in_r, stdout=self.out_w, stderr=self.err,
                             close_fds=True)
        LIVE.add(p.pid)
        return p

    def ready(self):
        secs = 60 + 30 * self.mem_mib // 1024
        _, _, m = self.console.wait(r'GAP TOUCH (.*)', 0, secs)
        self.touch = m.group(1)
        _, _, m = self.console.wait(r'GAP READY beat=0x([0-9a-f]+)', 0, 30)
        self.beat_off = int(m.group(1), 16)
        self.beat = Beat(self.memfd(), self.beat_off)
        self.watch = subprocess.Popen([self.cfg.gapwatch, 'watch', self.memfd(),
                                       str(self.beat_off), str(STALL_THRESHOLD_US)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self.err)
        self.stalls = Lines(self.watch.stdout.fileno())
        self.stalls.wait('^READY$', 0, 10)

    def query(self):
        """'?' to the guest: its largest TSC gap (us) since the previous '?'; and when we sent
        it (the end of the interval the host watched)."""
        mark = self.console.mark()
        t = now_ns()
        os.write(self.in_w, b'?')
        _, _, m = self.console.wait(r'GAP max_us=(\d+) over=(\d+) iters=(\d+)', mark, 10)
        return int(m.group(1)), t

    def stall_us(self, t0, t1):
        """The longest stop of the beat the host saw that began after t0 and ended before t1
        (0: none over the threshold), and how many us the guest's TSC gained on the host's
        across it (None if no stop). A stop's recorded start is the last sample that saw the
        beat move, up to one sampling interval before the stop: hence the 1 ms of slack. The
        printing of the guest's answer to the '?' sent at t1 ends after t1, that of the one
        before t0 started well before t0: neither counts."""
        time.sleep(0.002)
        worst, drift = 0, None
        with self.stalls.cv:
            lines = list(self.stalls.lines)
        for _, line in lines:
            p = line.split()
            if p[0] != 'STALL':
                continue
            a, b, us = int(p[1]), int(p[2]), int(p[3])
            if a >= t0 - 1000000 and b <= t1 and us > worst:
                worst, drift = us, int(p[4]) * 1000 // self.cfg.tsc_khz
        return worst, drift

    def watch_interval(self):
        if not self.watch:
            return None
        try:
            self.watch.stdin.close()
        except OSError:
            pass
        self.watch.wait(10)
        self.stalls.t.join(5)
        for _, line in self.stalls.lines:
            if line.startswith('INTERVAL us='):
                return int(line.split('=')[1])
        return None

    def close_fds(self):
        for fd in (self.in_r, self.in_w, self.out_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.console.t.join(5)
        try:
            os.close(self.out_r)
        except OSError:
            pass


class VmmSession(Session):
    name = 'vmm'

    def __init__(self, cfg, mem_mib, tag):
        super().__init__(cfg, mem_mib, tag)
        self.sock = os.path.join(self.work, tag + '.sock')
        self.argv = [cfg.vmm, 'run', '--kernel', cfg.guest, '--memory', '%dM' % mem_mib,
                     '--cpus', '1', '--cmdline', guest_cmdline(cfg), '--api-sock', self.sock]
        self.p = self.spawn(self.argv)
        self.pid = self.p.pid
        self.ready()

    def memfd(self):
        return memfd_of(self.pid, 'vmm-guest-ram', self.mem)

    def update(self):
        t0 = now_ns()
        body = api(self.sock, 'PUT', '/live-update', ok=(200,))
        t1 = now_ns()
        old, self.pid = self.pid, body['pid']
        LIVE.add(self.pid)
        code = reap(old)
        if code != 0:
            raise BenchError('vmm live update: the old process %d exited %s' % (old, code))
        return {'reported_us': body['blackout_us'], 'wall_us': (t1 - t0) / 1000, 't0': t0}

    def snapshot(self, state, mem):
        api(self.sock, 'PATCH', '/vm', {'state': 'Paused'})
        beat = self.beat.tsc()
        t0 = now_ns()
        api(self.sock, 'PUT', '/snapshot/create', {'snapshot_path': state, 'mem_file_path': mem,
                                                    'snapshot_type': 'Full'})
        t1 = now_ns()
        api(self.sock, 'PATCH', '/vm', {'state': 'Resumed'})
        return (t1 - t0) / 1000, beat

    def stop(self):
        kill(self.pid)
        self.watch_interval_us = self.watch_interval()
        self.close_fds()

    def restore_argv(self, state, mem):
        return [self.cfg.vmm, 'restore', state, '--mem', mem]


def qemu_argv(cfg, mem_mib, qmp, extra=()):
    return [cfg.qemu, '-L', cfg.qemu_data, '-name', 'bench,debug-threads=on',
            '-M', 'microvm,memory-backend=ram0,aux-ram-share=on', '-accel', 'kvm',
            '-cpu', cfg.qemu_cpu, '-smp', '1', '-m', '%dM' % mem_mib,
            '-object', 'memory-backend-memfd,id=ram0,size=%dM,share=on' % mem_mib,
            '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio',
            '-kernel', cfg.guest, '-append', guest_cmdline(cfg),
            '-qmp', 'unix:%s,server=on,wait=off' % qmp] + list(extra)


class QemuSession(Session):
    name = 'QEMU'

    def __init__(self, cfg, mem_mib, tag):
        super().__init__(cfg, mem_mib, tag)
        self.n = 0
        self.main_sock = os.path.join(self.work, tag + '-main.sock')
        self.cpr_sock = os.path.join(self.work, tag + '-cpr.sock')
        self.p = self.spawn(qemu_argv(cfg, mem_mib, self.qmp_path()))
        self.pid = self.p.pid
        self.qmp = QMP(self.qmp_path(), alive=lambda: self.p.poll() is None)
        self.ready()
        # File migrations at full speed (QEMU's default caps them at 128 MiB/s).
        self.qmp.cmd('migrate-set-parameters', **{'max-bandwidth': 1 << 40})

    def qmp_path(self):
        return os.path.join(self.work, '%s-qmp%d.sock' % (self.tag, self.n))

    def memfd(self):
        return memfd_of(self.pid, 'memory-backend-memfd', self.mem)

    def channels(self):
        return [{'channel-type': 'main',
                 'addr': {'transport': 'socket', 'type': 'unix', 'path': self.main_sock}},
                {'channel-type': 'cpr',
                 'addr': {'transport': 'socket', 'type': 'unix', 'path': self.cpr_sock}}]

    def wait_migration(self, qmp):
        while True:
            st = qmp.cmd('query-migrate')
            if st.get('status') in ('completed', 'failed', 'cancelled'):
                break
            time.sleep(0.002)
        if st['status'] != 'completed':
            raise BenchError('QEMU migration %s: %s' % (st['status'], st.get('error-desc')))
        return st

    def update(self):
        for p in (self.main_sock, self.cpr_sock):
            if os.path.exists(p):
                os.unlink(p)
        self.qmp.cmd('migrate-set-parameters', mode='cpr-transfer')
        self.n += 1
        t0 = now_ns()
        inc = ['-incoming', json.dumps(self.channels()[0]), '-incoming',
               json.dumps(self.channels()[1])]
        newp = self.spawn(qemu_argv(self.cfg, self.mem_mib, self.qmp_path(), inc))
        end = time.monotonic() + 60
        while not unix_listening(self.cpr_sock):
            if newp.poll() is not None or time.monotonic() > end:
                raise BenchError('the new QEMU did not listen on its cpr channel (exit %s)'
                                 % newp.poll())
            time.sleep(0.0005)
        self.qmp.cmd('migrate', channels=self.channels())
        st = self.wait_migration(self.qmp)
        newq = QMP(self.qmp_path(), alive=lambda: newp.poll() is None)
        while newq.cmd('query-status')['status'] != 'running':
            time.sleep(0.0005)
        t1 = now_ns()
        try:
            self.qmp.cmd('quit')
        except BenchError:
            pass
        self.qmp.close()
        code = reap(self.pid)
        if code != 0:
            raise BenchError('QEMU cpr-transfer: the old QEMU %d exited %s' % (self.pid, code))
        self.qmp, self.p, self.pid = newq, newp, newp.pid
        self.qmp.cmd('migrate-set-parameters', **{'max-bandwidth': 1 << 40})
        return {'reported_us': st['downtime'] * 1000, 'wall_us': (t1 - t0) / 1000, 't0': t0}

    def snapshot(self, path, running=False):
        if not running:
            self.qmp.cmd('stop')
        beat0 = self.beat.tsc()
        t0 = now_ns()
        self.qmp.cmd('migrate', uri='file:' + path)
        st = self.wait_migration(self.qmp)
        t1 = now_ns()
        # vmm's snapshot is durable (it fsyncs its files before renaming them into place);
        # QEMU's migration to a file is not: the same durability costs this much more.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        os.fsync(fd)
        os.close(fd)
        t2 = now_ns()
        beat = self.beat.tsc()  # stopped now in either case: what the file holds
        if not running and beat != beat0:
            raise BenchError('QEMU: the beat moved while the VM was stopped')
        if not running:
            self.qmp.cmd('cont')
        return (t1 - t0) / 1000, (t2 - t0) / 1000, beat, st

    def stop(self):
        try:
            self.qmp.cmd('quit')
        except BenchError:
            pass
        self.qmp.close()
        if reap(self.pid, 10) is None:
            kill(self.pid)
        self.watch_interval_us = self.watch_interval()
        self.close_fds()

    def restore_argv(self, path):
        return qemu_argv(self.cfg, self.mem_mib,
                         os.path.join(self.work, '%s-restore.sock' % self.tag),
                         ['-incoming', 'file:' + path])


# ---- one size ------------------------------------------------------------------------------

def run_updates(s, cfg):
    """Updates, then as many intervals without one. Each update is bracketed by two '?' to the
    guest: the first starts its interval just before the update, the second, cfg.settle after
    the update returned, reads its largest TSC gap. The host-seen stop is the longest inside
    [update requested, second '?']."""
    s.update()  # warm-up, not recorded
    res = {'reported': [], 'host': [], 'drift': [], 'guest': [], 'wall': [], 'idle_host': [],
           'idle_guest': []}
    for i in range(cfg.updates):
        time.sleep(cfg.pause)
        s.query()
        time.sleep(0.005)  # the answer's printing is over well before the update
        u = s.update()
        time.sleep(cfg.settle)
        g, tq = s.query()
        res['reported'].append(u['reported_us'])
        res['wall'].append(u['wall_us'])
        res['guest'].append(g)
        host, drift = s.stall_us(u['t0'], tq)
        res['host'].append(host)
        if drift is not None:
            res['drift'].append(drift)
        if (i + 1) % 10 == 0:
            log('%s %d MiB: %d updates' % (s.name, s.mem_mib, i + 1))
    window = statistics.median(res['wall']) / 1e6
    for i in range(cfg.idle):
        time.sleep(cfg.pause)
        s.query()
        time.sleep(0.005)
        t0 = now_ns()
        time.sleep(window + cfg.settle)
        g, tq = s.query()
        res['idle_guest'].append(g)
        res['idle_host'].append(s.stall_us(t0, tq)[0])
    return res


def run_size(cfg, mem_mib):
    out = {'mem_mib': mem_mib}
    d = cfg.work
    # vmm
    log('vmm, %d MiB: starting (the guest touches its RAM first)' % mem_mib)
    v = VmmSession(cfg, mem_mib, 'vmm-%d' % mem_mib)
    out['vmm_touch'] = v.touch
    out['vmm'] = run_updates(v, cfg)
    snaps = []
    for i in range(cfg.snapshots):
        st, mem = os.path.join(d, 'vmm-%d.state' % mem_mib), os.path.join(d, 'vmm-%d.mem' % mem_mib)
        us, beat = v.snapshot(st, mem)
        snaps.append(us)
        vmm_beat = beat
    out['vmm_snap_us'] = snaps
    out['vmm_state_size'] = file_sizes(st)
    out['vmm_mem_size'] = file_sizes(mem)
    v.stop()
    out['vmm_interval_us'] = v.watch_interval_us
    vmm_restore = v.restore_argv(st, mem)
    # QEMU
    log('QEMU, %d MiB: starting' % mem_mib)
    q = QemuSession(cfg, mem_mib, 'qemu-%d' % mem_mib)
    out['qemu_touch'] = q.touch
    out['qemu'] = run_updates(q, cfg)
    snaps, synced = [], []
    qfile = os.path.join(d, 'qemu-%d.mig' % mem_mib)
    for i in range(cfg.snapshots):
        us, us_sync, _, st_ = q.snapshot(qfile)
        snaps.append(us)
        synced.append(us_sync)
    out['qemu_snap_us'] = snaps
    out['qemu_snap_fsync_us'] = synced
    out['qemu_file_size'] = file_sizes(qfile)
    us, _, qemu_beat, st_ = q.snapshot(qfile, running=True)
    out['qemu_snap_running_us'] = us
    out['qemu_snap_running_downtime_ms'] = st_.get('downtime')
    q.stop()
    out['qemu_interval_us'] = q.watch_interval_us
    qemu_restore = q.restore_argv(qfile)
    # restores, alternated, one warm-up each
    out['vmm_restore'], out['qemu_restore'] = [], []
    elog = open(os.path.join(d, 'restore-%d.stderr' % mem_mib), 'ab')
    for i in range(cfg.restores + 1):
        for who, mapname, beat, argv in (
                # vmm's restored RAM is a memfd filled from the file on first touch
                ('vmm', 'memfd:vmm-guest-ram', vmm_beat, vmm_restore),
                ('qemu', 'memfd:memory-backend-memfd', qemu_beat, qemu_restore)):
            qsock = os.path.join(d, 'qemu-%d-restore.sock' % mem_mib)
            if os.path.exists(qsock):
                os.unlink(qsock)
            r = subprocess.run([cfg.gapwatch, 'first', mapname, str(v.beat_off if who == 'vmm'
                                                                     else q.beat_off),
                                str(beat), '--'] + argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=elog, timeout=300)
            m = re.search(rb'mapped_us=(\d+) first_us=(\d+)', r.stdout)
            if r.returncode != 0 or not m:
                raise BenchError('%s restore failed (see %s): %s' % (who, elog.name, r.stdout))
            if i:
                out[who + '_restore'].append((int(m.group(1)), int(m.group(2))))
    out['vmm_restore_cmd'] = vmm_restore
    out['qemu_restore_cmd'] = qemu_restore
    for f in (st, mem, qfile):
        os.unlink(f)
    out['vmm_cmd'] = v.argv
    out['qemu_cmd'] = qemu_argv(cfg, mem_mib, 'PATH')
    return out


# ---- report --------------------------------------------------------------------------------

def ms(us):
    return '%.2f' % (us / 1000)


def pp(vals):
    return '%s / %s' % (ms(pct(vals, 50)), ms(pct(vals, 99)))


def ratio(a, b):
    return '%.2f' % (a / b) if b else 'n/a'


def mib(n):
    return '%.1f MiB' % (n / 1048576)


def med3(vals):
    """median (min–max), in ms"""
    return '%s (%s–%s)' % (ms(statistics.median(vals)), ms(min(vals)), ms(max(vals)))


def blackout_target(t, vals):
    ok = pct(vals, 50) <= t['p50'] and pct(vals, 99) <= t['p99']
    return '≤ %g / ≤ %g: %s' % (t['p50'] / 1000, t['p99'] / 1000, 'met' if ok else '**missed**')


def drift(vals):
    if not vals:
        return 'n/a'
    a = sorted(abs(v) for v in vals)
    return '%d / %d us; %d of %d over 0.5 ms' % (pct(a, 50), a[-1], sum(v > 500 for v in a),
                                                len(a))


def report(cfg, results):
    t = cfg.targets
    print('# vmm live update, snapshot and restore against QEMU %s' % cfg.qemu_version)
    print()
    print('These figures come from a software-nested KVM (our development machines\' /dev/kvm, '
          '/work/shared/ENVIRONMENT.md), where guest kernel-mode code is emulated (~1 us per '
          'instruction) and every exit costs ~9 us: absolute times are far above those on a '
          'hardware-KVM host; compare the two columns of one run.')
    print()
    print('- date: %s; machine: %s; %d CPUs (%s); kernel %s' % (
        time.strftime('%Y-%m-%d %H:%M'), platform.node(), os.cpu_count(), cfg.cpu_model,
        platform.release()))
    print('- guest: `%s`, 1 vCPU, cmdline `%s`; TSC %d kHz (KVM_GET_TSC_KHZ)' % (
        os.path.basename(cfg.guest), guest_cmdline(cfg), cfg.tsc_khz))
    print('- %d live updates per VMM and size after one unrecorded, %.0f ms apart; %d windows '
          'without an update; %d snapshots; %d restores each after one unrecorded; p99 is the '
          'nearest rank (of 50 values: the largest)' % (cfg.updates, cfg.pause * 1000, cfg.idle,
                                                        cfg.snapshots, cfg.restores))
    print('- QEMU: `%s`, `-cpu %s`' % (cfg.qemu, cfg.qemu_cpu))
    print('- load average at start / end: %s / %s; other processes that took more than 10%% of a '
          'CPU over the run: %s' % (' '.join(cfg.load0), ' '.join(cfg.load1),
                                    ', '.join(cfg.others) or 'none'))
    print()
    for r in results:
        v, q = r['vmm'], r['qemu']
        print('## %d MiB guest' % r['mem_mib'])
        print()
        print('| row | vmm | QEMU | vmm/QEMU | target |')
        print('| --- | --- | --- | --- | --- |')
        print('| live update: blackout the VMM reports, p50 / p99 ms (vmm: `blackout_us`, pause to '
              'resume; QEMU: `query-migrate` downtime, 1 ms steps) | %s | %s | %s | %s |'
              % (pp(v['reported']), pp(q['reported']),
                 ratio(pct(v['reported'], 50), pct(q['reported'], 50)),
                 blackout_target(t, v['reported'])))
        print('| live update: the gap the guest sees (its largest TSC gap), p50 / p99 ms | %s | %s '
              '| %s | %s |' % (pp(v['guest']), pp(q['guest']),
                               ratio(pct(v['guest'], 50), pct(q['guest'], 50)),
                               blackout_target(t, v['guest'])))
        print('| live update: the guest\'s TSC against the host\'s across the stop, \\|drift\\| '
              'p50 / max | %s | %s | | 0 |' % (drift(v['drift']), drift(q['drift'])))
        print('| live update: the stop seen from the host (beat in guest RAM; an upper bound, '
              'see README), p50 / p99 ms | %s | %s | %s | |'
              % (pp(v['host']), pp(q['host']), ratio(pct(v['host'], 50), pct(q['host'], 50))))
        print('| live update: request to guest running again (wall), p50 / p99 ms | %s | %s | %s '
              '| |' % (pp(v['wall']), pp(q['wall']), ratio(pct(v['wall'], 50),
                                                            pct(q['wall'], 50))))
        print('| no update (noise floor, same windows): guest TSC gap p50 / p99; host-seen stop '
              'p99 ms | %s; %s | %s; %s | | |'
              % (pp(v['idle_guest']), ms(pct(v['idle_host'], 99)), pp(q['idle_guest']),
                 ms(pct(q['idle_host'], 99))))
        vs, qs, qf = r['vmm_snap_us'], r['qemu_snap_us'], r['qemu_snap_fsync_us']
        print('| snapshot of the paused VM to durable files, median (min–max) ms (vmm: `PUT '
              '/snapshot/create`, which fsyncs; QEMU: `migrate` to `file:`, then an fsync of '
              'the file) | %s | %s | %s | |'
              % (med3(vs), med3(qf), ratio(statistics.median(vs), statistics.median(qf))))
        print('| snapshot: QEMU\'s `migrate` to `file:` alone, median (min–max) ms | | %s | %s '
              '| |' % (med3(qs), ratio(statistics.median(vs), statistics.median(qs))))
        print('| snapshot files: state; memory apparent / allocated | %s; %s / %s | one stream '
              'file: %s / %s | | |' % (mib(r['vmm_state_size'][0]), mib(r['vmm_mem_size'][0]),
                                       mib(r['vmm_mem_size'][1]), mib(r['qemu_file_size'][0]),
                                       mib(r['qemu_file_size'][1])))
        vr = [f for _, f in r['vmm_restore']]
        qr = [f for _, f in r['qemu_restore']]
        print('| restore: exec to the guest\'s first instruction, median (min–max) ms | %s | %s '
              '| %s | ≤ %g: %s |' % (med3(vr), med3(qr), ratio(statistics.median(vr),
                                                               statistics.median(qr)),
                                     t['restore'] / 1000,
                                     'met' if statistics.median(vr) <= t['restore']
                                     else '**missed**'))
        print('| restore: exec to guest RAM mapped, median ms | %s | %s | | |'
              % (ms(statistics.median([m for m, _ in r['vmm_restore']])),
                 ms(statistics.median([m for m, _ in r['qemu_restore']]))))
        print()
        print('Guest RAM touch (guest-reported): vmm `%s`, QEMU `%s`. QEMU snapshot of the '
              'running VM (the one restored): %s ms, downtime %s ms. Host sampling interval '
              '(median): vmm %s us, QEMU %s us.' % (
                  r['vmm_touch'], r['qemu_touch'], ms(r['qemu_snap_running_us']),
                  r['qemu_snap_running_downtime_ms'], r['vmm_interval_us'],
                  r['qemu_interval_us']))
        print()
    if len(results) > 1:
        lo, hi = results[0], results[-1]
        print('## Flat from %d MiB to %d MiB?' % (lo['mem_mib'], hi['mem_mib']))
        print()
        for key, what in (('reported', 'blackout the VMM reports'),
                          ('guest', 'gap the guest sees')):
            for who in ('vmm', 'qemu'):
                print('- %s, %s, p50 (p99) ms: %s' % (
                    'vmm' if who == 'vmm' else 'QEMU', what, ', '.join(
                        '%d MiB %s (%s)' % (r['mem_mib'], ms(pct(r[who][key], 50)),
                                            ms(pct(r[who][key], 99))) for r in results)))
        print()
    print('## Command lines')
    print()
    for r in results:
        print('- %d MiB: `%s`; `%s`' % (r['mem_mib'], ' '.join(map(shlex.quote, r['vmm_cmd'])),
                                        ' '.join(map(shlex.quote, r['qemu_cmd']))))
    print('- live update: vmm `PUT /live-update`; QEMU: a new QEMU with the same arguments plus '
          '`-incoming` main and cpr channels (unix sockets), then on the old one '
          '`migrate-set-parameters mode=cpr-transfer` and `migrate` with both channels')
    print('- restore: `vmm restore STATE --mem MEM`; QEMU as above with `-incoming file:PATH`')


def host_facts(cfg):
    """cfg.tsc_khz: the TSC rate KVM gives its guests (no TSC scaling here: both VMMs' guests
    see this); cfg.qemu_version, cfg.cpu_model for the report."""
    import fcntl
    kvm = os.open('/dev/kvm', os.O_RDWR | os.O_CLOEXEC)
    vm = fcntl.ioctl(kvm, 0xAE01, 0)           # KVM_CREATE_VM
    vcpu = fcntl.ioctl(vm, 0xAE41, 0)          # KVM_CREATE_VCPU
    cfg.tsc_khz = fcntl.ioctl(vcpu, 0xAEA3, 0)  # KVM_GET_TSC_KHZ
    for fd in (vcpu, vm, kvm):
        os.close(fd)
    cfg.qemu_version = subprocess.run([cfg.qemu, '--version'], capture_output=True,
                                      text=True).stdout.split('\n')[0].replace(
                                          'QEMU emulator version ', '')
    cfg.cpu_model = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo')
                          if l.startswith('model name')), '?')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--vmm', required=True)
    ap.add_argument('--guest', required=True, help='micro-pvh.elf')
    ap.add_argument('--gapwatch', required=True)
    ap.add_argument('--qemu', required=True)
    ap.add_argument('--qemu-data', required=True)
    ap.add_argument('--qemu-cpu', default='host,-arch-capabilities')
    ap.add_argument('--work', required=True)
    ap.add_argument('--sizes', default='256,1024,4096', help='MiB, comma-separated')
    ap.add_argument('--updates', type=int, default=50)
    ap.add_argument('--idle', type=int, default=50)
    ap.add_argument('--snapshots', type=int, default=3)
    ap.add_argument('--restores', type=int, default=5)
    ap.add_argument('--pause-ms', type=int, default=200)
    ap.add_argument('--json', help='also write the raw results here')
    cfg = ap.parse_args()
    cfg.pause = cfg.pause_ms / 1000
    cfg.settle = 0.02
    cfg.targets = {'p50': 3000, 'p99': 8000, 'restore': 10000}
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    host_facts(cfg)
    results = []
    cfg.load0 = open('/proc/loadavg').read().split()[:3]
    others = OtherLoad()
    try:
        for s in cfg.sizes.split(','):
            results.append(run_size(cfg, int(s)))
    finally:
        for pid in list(LIVE):
            if pid_alive(pid):
                kill(pid)
        if cfg.json and results:
            with open(cfg.json, 'w') as f:
                json.dump(results, f, indent=1)
    cfg.load1 = open('/proc/loadavg').read().split()[:3]
    cfg.others = others.busy()
    report(cfg, results)
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except BenchError as e:
        log('error: %s' % e)
        sys.exit(1)
