#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The API socket driving a running micro-guest on /dev/kvm (issue 8).

`vmm --api-sock PATH --id NAME` waits to be configured; this script is its client, speaking
HTTP/1.1 over the unix socket as curl or Firecracker's Go SDK would. The guest is the
micro-guest's 'tick' scenario ("TICK n" lines, n counting up without a gap) or its 'cad'
scenario (it waits for Ctrl-Alt-Del on its i8042). Checks: the lifecycle (Not started,
Running, Paused), pause (output stops, the process uses next to no CPU), resume (output goes
on with no gap), SendCtrlAltDel, a client that disconnects mid-request, a client that floods
the socket without reading, and a stale socket file that is taken over; the socket file goes
away when vmm exits.

usage: api_guest.py VMM MICRO_BZIMAGE   (exit 0 pass, 1 fail, 77 no /dev/kvm)
"""
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

from vmmtest import check, request, summary


class Vmm:
    def __init__(self, vmm, sock, vm_id):
        self.sock = sock
        self.p = subprocess.Popen([vmm, '--api-sock', sock, '--id', vm_id],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.out = b''
        os.set_blocking(self.p.stdout.fileno(), False)
        # Up once it answers (a stale file may be there before it is).
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                c = socket.socket(socket.AF_UNIX)
                c.connect(sock)
                c.close()
                break
            except OSError:
                time.sleep(0.01)

    def pump(self, secs):
        end = time.monotonic() + secs
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                try:
                    chunk = os.read(self.p.stdout.fileno(), 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    time.sleep(left)
                    return
                self.out += chunk

    def ticks(self):
        return [int(n) for n in re.findall(rb'TICK (\d+)', self.out)]

    def wait_ticks(self, n, secs=20):
        end = time.monotonic() + secs
        while (not self.ticks() or self.ticks()[-1] < n) and time.monotonic() < end:
            self.pump(0.05)
        return bool(self.ticks()) and self.ticks()[-1] >= n

    def cpu_ns(self):
        """CPU time of every thread of vmm so far (schedstat: nanoseconds)."""
        total = 0
        for t in os.listdir('/proc/%d/task' % self.p.pid):
            try:
                with open('/proc/%d/task/%s/schedstat' % (self.p.pid, t)) as f:
                    total += int(f.read().split()[0])
            except OSError:
                pass
        return total


def gapless(ticks):
    return ticks == list(range(1, len(ticks) + 1))


def configure(sock, kernel, cmdline):
    st1, _ = request(sock, 'PUT', '/machine-config',
                     {'vcpu_count': 1, 'mem_size_mib': 64, 'smt': False})
    st2, _ = request(sock, 'PUT', '/boot-source',
                     {'kernel_image_path': kernel, 'boot_args': cmdline})
    return st1 == 204 and st2 == 204


def main():
    vmm_path, kernel = sys.argv[1], sys.argv[2]
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        print('SKIP: no usable /dev/kvm')
        return 77
    tmp = tempfile.mkdtemp(prefix='vmm-api-')
    sock = os.path.join(tmp, 'api.sock')

    # A stale socket file (bound, then its process gone) is taken over.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock)
    stale.close()
    v = Vmm(vmm_path, sock, 'micro-1')
    st, info = request(sock, 'GET', '/')
    check('stale-socket-taken-over', st == 200, 'status %s' % st)
    check('get-root', info and info.get('id') == 'micro-1' and
          info.get('state') == 'Not started', repr(info))
    st, ver = request(sock, 'GET', '/version')
    check('get-version', st == 200 and 'firecracker_version' in ver, repr(ver))
    st, err = request(sock, 'PATCH', '/vm', {'state': 'Paused'})
    check('pause-before-start-400', st == 400 and 'fault_message' in err, '%s %r' % (st, err))
    st, err = request(sock, 'PUT', '/actions', {'action_type': 'SendCtrlAltDel'})
    check('ctrl-alt-del-before-start-400', st == 400, '%s %r' % (st, err))

    check('configure', configure(sock, kernel, 't.scenario=tick t.cycles=20000000'))
    st, cfg = request(sock, 'GET', '/vm/config')
    check('vm-config', st == 200 and cfg['machine-config']['mem_size_mib'] == 64 and
          cfg['boot-source']['kernel_image_path'] == kernel, repr(cfg)[:200])
    st, _ = request(sock, 'PUT', '/actions', {'action_type': 'InstanceStart'})
    check('instance-start', st == 204, 'status %s' % st)
    st, info = request(sock, 'GET', '/')
    check('running', info.get('state') == 'Running', repr(info))
    st, _ = request(sock, 'PUT', '/boot-source', {'kernel_image_path': kernel})
    check('boot-source-after-start-400', st == 400, 'status %s' % st)
    check('ticks', v.wait_ticks(5), v.out[-200:])

    # Pause: silence, next to no CPU; resume: no gap.
    st, _ = request(sock, 'PATCH', '/vm', {'state': 'Paused'})
    check('pause', st == 204, 'status %s' % st)
    st, info = request(sock, 'GET', '/')
    check('paused-state', info.get('state') == 'Paused', repr(info))
    v.pump(0.1)
    at_pause = v.ticks()[-1]
    cpu0 = v.cpu_ns()
    v.pump(1.0)
    cpu = (v.cpu_ns() - cpu0) / 1e9
    check('paused-silent', v.ticks()[-1] == at_pause,
          'ticks went from %d to %d' % (at_pause, v.ticks()[-1]))
    check('paused-no-cpu', cpu < 0.05, '%.3f s of CPU in 1 s paused' % cpu)
    st, _ = request(sock, 'PATCH', '/vm', {'state': 'Resumed'})
    check('resume', st == 204, 'status %s' % st)
    check('resumed-ticks', v.wait_ticks(at_pause + 5), v.out[-200:])
    check('no-gap-after-resume', gapless(v.ticks()), repr(v.ticks()[-20:]))

    # A client that disconnects mid-request, and one that floods without reading.
    half = socket.socket(socket.AF_UNIX)
    half.connect(sock)
    half.sendall(b'PUT /machine-config HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"vcpu')
    half.close()
    flood = socket.socket(socket.AF_UNIX)
    flood.connect(sock)
    flood.setblocking(False)
    before = v.ticks()[-1]
    sent = 0
    end = time.monotonic() + 1.5
    req = b'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
    while time.monotonic() < end:
        try:
            sent += flood.send(req * 64)
        except BlockingIOError:
            pass
        v.pump(0.01)
        # Meanwhile another client is answered.
    st, info = request(sock, 'GET', '/', timeout=5)
    check('answered-during-flood', st == 200 and info.get('state') == 'Running',
          '%s %r' % (st, info))
    check('guest-runs-during-flood', v.ticks()[-1] > before + 5,
          'ticks %d -> %d while %d bytes flooded' % (before, v.ticks()[-1], sent))
    flood.close()
    check('no-gap-after-flood', gapless(v.ticks()), repr(v.ticks()[-20:]))

    # SIGTERM: 143, and the socket file is gone.
    v.p.send_signal(signal.SIGTERM)
    try:
        code = v.p.wait(10)
    except subprocess.TimeoutExpired:
        v.p.kill()
        code = None
    err = v.p.stderr.read()
    check('sigterm-143', code == 143 and b'terminated (SIGTERM)' in err, '%s %r' % (code, err))
    check('socket-removed', not os.path.exists(sock))

    # SendCtrlAltDel reaches a guest that waits for it.
    v = Vmm(vmm_path, sock, 'micro-cad')
    configure(sock, kernel, 't.scenario=cad')
    request(sock, 'PUT', '/actions', {'action_type': 'InstanceStart'})
    end = time.monotonic() + 20
    while b'READY' not in v.out and time.monotonic() < end:
        v.pump(0.05)
    st, _ = request(sock, 'PUT', '/actions', {'action_type': 'SendCtrlAltDel'})
    check('send-ctrl-alt-del', st == 204, 'status %s' % st)
    try:
        code = v.p.wait(10)
    except subprocess.TimeoutExpired:
        v.p.kill()
        code = None
    v.pump(0.1)
    # The guest exits 0x2a once it read Ctrl-Alt-Del: status (0x2a << 1) | 1 = 85.
    check('guest-got-ctrl-alt-del', code == 85 and b'MICRO CAD ok' in v.out,
          'exit %s, console %r' % (code, v.out[-200:]))
    check('socket-removed-after-guest-exit', not os.path.exists(sock))
    os.rmdir(tmp)
    return summary()


if __name__ == '__main__':
    sys.exit(main())
