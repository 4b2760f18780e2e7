# SPDX-License-Identifier: Apache-2.0
"""What the Python integration tests share: PASS/FAIL lines, one API request, a vmm whose
console is a pipe we read, and the checks on a counting guest's output."""
import ctypes
import json
import os
import re
import select
import socket
import subprocess
import time

failures = []


def check(name, ok, detail=''):
    print('%s %s%s' % ('PASS' if ok else 'FAIL', name, '' if ok else ': ' + str(detail)[:400]))
    if not ok:
        failures.append(name)
    return ok


def summary():
    """The exit status: 1 if any check failed."""
    print('%d failed' % len(failures))
    return 1 if failures else 0


def request(sock, method, path, body=None, timeout=30):
    """One request on a fresh connection: (status, parsed JSON body or None)."""
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


def wait_socket(sock, secs=10):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            c = socket.socket(socket.AF_UNIX)
            c.connect(sock)
            c.close()
            return True
        except OSError:
            time.sleep(0.01)
    return False


class Proc:
    """A vmm with its console on a pipe we read (the pipe outlives a live update's old
    process: the new one inherits it)."""

    def __init__(self, args, sock=None, env=None, stdin=subprocess.DEVNULL):
        self.p = subprocess.Popen(args, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        os.set_blocking(self.p.stdout.fileno(), False)
        self.out = b''
        self.eof = False
        if sock:
            wait_socket(sock)

    def pump(self, secs):
        end = time.monotonic() + secs
        while time.monotonic() < end and not self.eof:
            r, _, _ = select.select([self.p.stdout], [], [], max(0, end - time.monotonic()))
            if r:
                try:
                    chunk = os.read(self.p.stdout.fileno(), 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    self.eof = True
                    return
                self.out += chunk

    def counts(self):
        return [int(n) for n in re.findall(rb'COUNT (\d+)\r?\n', self.out)]

    def wait_count(self, n, secs=30, alive=None):
        """Until the guest printed n; alive() (default: our child runs) says whether to go on
        waiting."""
        alive = alive or (lambda: self.p.poll() is None)
        end = time.monotonic() + secs
        while (not self.counts() or self.counts()[-1] < n) and time.monotonic() < end:
            if not alive() or self.eof:
                self.pump(0.1)
                break
            self.pump(0.05)
        return bool(self.counts()) and self.counts()[-1] >= n

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()

    def finish(self, secs=10):
        try:
            self.p.wait(secs)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.p.returncode, self.p.stderr.read()


COUNT_GUEST = ('t.scenario=count t.cycles=20000000 t.ndev=1 t.mmio_base=0xd0000000 '
               't.gsi_base=16')


def start_count_guest(vmm, kernel, sock, disk, vm_id, track_dirty=False, env=None, vcpus=1):
    """A vmm serving sock, configured and started over the API with the micro-guest's 'count'
    scenario (64 MiB, one disk, disk0; with vcpus > 1 an AP works throughout, t.aps=1);
    (Proc, InstanceStart's status)."""
    v = Proc([vmm, '--api-sock', sock, '--id', vm_id], sock, env=env)
    request(sock, 'PUT', '/machine-config', {'vcpu_count': vcpus, 'mem_size_mib': 64,
                                              'track_dirty_pages': track_dirty})
    request(sock, 'PUT', '/boot-source', {'kernel_image_path': kernel,
                                          'boot_args': COUNT_GUEST +
                                          (' t.aps=1' if vcpus > 1 else '')})
    request(sock, 'PUT', '/drives/disk0', {'drive_id': 'disk0', 'path_on_host': disk,
                                            'is_root_device': False, 'is_read_only': False})
    st, _ = request(sock, 'PUT', '/actions', {'action_type': 'InstanceStart'})
    return v, st


def contiguous(seq, start):
    return seq == list(range(start, start + len(seq)))


def counts_across(before_out, after_out):
    """The counts a restored guest printed, its first line joined to the part of a line the
    snapshotted guest had begun: a pause can fall between two characters of a line."""
    tail = before_out[before_out.rfind(b'\n') + 1:]
    return [int(n) for n in re.findall(rb'COUNT (\d+)\r?\n', tail + after_out)]


def become_subreaper():
    """Orphans (a live update's new vmm, once the old one exited) become our children, so
    that we can reap them and see their status."""
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def pid_alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(') ')[1][0] != 'Z'
    except OSError:
        return False


def reap(pid, secs=10):
    """The exit status of pid (our child, or an orphan we are the subreaper of); None if it
    did not end within secs."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            got, st = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if got == pid:
            return os.waitstatus_to_exitcode(st)
        time.sleep(0.01)
    return None
