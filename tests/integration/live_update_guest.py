#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Live update of a running micro-guest (issue 9): PUT /live-update, 100 times in a row.

The guest is the micro-guest's 'count' scenario (a count in RAM and in a register, "COUNT n"
printed at every step, a sector of its virtio disk written and read back at every step). Each
update starts a new vmm that takes over guest RAM, the disk, the console pipe and the API
socket; the old one must exit 0, the API must go on answering on the same path, a supervisor
listening on NOTIFY_SOCKET must hear MAINPID= of the new one, and the guest's count must have
no reset, gap or repeat, with every disk request completed exactly once (the guest checks each
request's completion and read-back; the host checks the image at the end).

Then updates that must fail with the guest going on under the old process: a binary that is
not vmm (/bin/false; a file that is not executable), and new processes that break the
protocol at each step (one that exits after it got the state, one that refuses, one that
answers garbage, one that never answers): the old process resumes the guest and answers with the error.

This test is the processes' subreaper, so that it reaps each old vmm and the last new one.

usage: live_update_guest.py VMM MICRO_BZIMAGE   (exit 0 pass, 1 fail, 77 no /dev/kvm)
"""
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import sys
import tempfile
import time

from vmmtest import (Proc, become_subreaper, check, contiguous, counts_across, pid_alive, reap,
                     request, start_count_guest, summary)

UPDATES = 100

# A stand-in for the new process that speaks the handover's framing (vmm/vm/handover.c: a
# header of le32 type, le32 number of fds, le64 payload length, then the payload) and breaks
# the protocol at the step named by its first argument.
FAKE_NEW = r'''#!/usr/bin/env python3
import os, socket, struct, sys, time
mode = MODE
s = socket.socket(fileno=3)
def recv():
    msg, anc, _, _ = s.recvmsg(16, socket.CMSG_SPACE(64))
    t, n, ln = struct.unpack('<IIQ', msg)
    left = ln
    while left:
        left -= len(s.recv(min(left, 1 << 20)))
    return t
def send(t, payload=b''):
    s.sendall(struct.pack('<IIQ', t, 0, len(payload)) + payload)
assert recv() == 1                      # PREPARE
if mode == 'refuse':
    send(5, b'test: this new process refuses\0')   # FAILED
    sys.exit(1)
send(2)                                 # READY
recv()                                  # STATE: the old process has paused the guest
if mode == 'garbage':
    s.sendall(b'\xff' * 64)
    time.sleep(1)
if mode == 'hang':
    time.sleep(60)
sys.exit(3)
'''


def fill(n, sector):
    """The sector the guest writes at step n (tests/guest/micro/count.c, count_fill)."""
    return b''.join(struct.pack('<I', ((n * 0x9e3779b9) & 0xffffffff) ^ sector ^ i)
                    for i in range(128))


def main():
    vmm, kernel = sys.argv[1], sys.argv[2]
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        print('SKIP: no usable /dev/kvm')
        return 77
    become_subreaper()
    tmp = tempfile.mkdtemp(prefix='vmm-lu-')
    sock = os.path.join(tmp, 'api.sock')
    disk = os.path.join(tmp, 'disk.img')
    with open(disk, 'wb') as f:
        f.truncate(1 << 20)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(os.path.join(tmp, 'notify'))
    notify.settimeout(5)
    env = dict(os.environ, NOTIFY_SOCKET=os.path.join(tmp, 'notify'))
    v, st = start_count_guest(vmm, kernel, sock, disk, 'lu', env=env)
    check('start', st == 204, st)
    check('counting', v.wait_count(5), v.out[-300:])
    # Ready (sd_notify): said once, when the API is up for a VM configured over it.
    try:
        msg = notify.recv(64)
    except OSError as e:
        msg = repr(e)
    check('notify-ready', msg == b'READY=1\n', msg)
    pid = v.p.pid
    alive = lambda: pid_alive(pid)  # noqa: E731 (the current vmm, whichever it is)

    # 100 updates in a row, the guest counting throughout.
    blackouts, walls, bad, nfds = [], [], [], []
    for i in range(UPDATES):
        t0 = time.monotonic()
        st, body = request(sock, 'PUT', '/live-update')
        walls.append(time.monotonic() - t0)
        if st != 200 or not body or body.get('pid') in (None, pid):
            bad.append('update %d: %s %s' % (i, st, body))
            break
        old, pid = pid, body['pid']
        blackouts.append(body['blackout_us'])
        code = reap(old)
        if code != 0:
            bad.append('update %d: old process %d exited %s' % (i, old, code))
        try:
            msg = notify.recv(64)
        except socket.timeout:
            msg = b''
        if msg != b'MAINPID=%d\n' % pid:
            bad.append('update %d: NOTIFY_SOCKET got %r' % (i, msg))
        # The guest makes progress under the new process before the next update.
        if not v.wait_count(v.counts()[-1] + 1, alive=alive):
            bad.append('update %d: no count after it' % i)
            break
        try:  # but the API's connections, which come and go
            d = '/proc/%d/fd' % pid
            nfds.append(sum(not os.readlink(os.path.join(d, f)).startswith('socket:')
                            for f in os.listdir(d)))
        except OSError:
            pass
    check('100-updates', not bad, bad[:3])
    # Nothing of an old process leaks into the new one (an old KVM VM kept alive by a
    # descriptor would pin its memory).
    check('no-fd-growth', len(set(nfds)) == 1, 'open fds after each update: %r' % nfds[:5] +
          ' ... %r' % nfds[-5:])
    st, info = request(sock, 'GET', '/')
    check('api-same-path', st == 200 and info['state'] == 'Running' and info['id'] == 'lu',
          info)
    # A keep-alive client is told to reconnect: the answer closes its connection.
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(30)
    c.connect(sock)
    c.sendall(b'PUT /live-update HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')
    head = b''
    while b'\r\n\r\n' not in head:
        chunk = c.recv(4096)
        if not chunk:
            break
        head += chunk
    m = re.search(rb'"pid":(\d+)', head)
    while m is None:
        chunk = c.recv(4096)
        if not chunk:
            break
        head += chunk
        m = re.search(rb'"pid":(\d+)', head)
    closed = c.recv(4096) == b''
    c.close()
    check('keep-alive-told-to-reconnect', head.startswith(b'HTTP/1.1 200') and
          b'Connection: close' in head and closed and m, head[:300])
    if m:
        reap(pid)
        pid = int(m.group(1))
    v.wait_count(v.counts()[-1] + 5, alive=alive)
    seq = v.counts()
    check('count-contiguous', contiguous(seq, 1) and len(seq) > UPDATES,
          'first %r last %r, %d values' % (seq[:3], seq[-3:], len(seq)))
    check('no-guest-failure', b'MICRO FAIL' not in v.out, v.out[-300:])
    if blackouts:
        b = sorted(blackouts)
        print('  blackout over %d updates: p50 %d us, p99 %d us, max %d us; request %.1f ms '
              'median' % (len(b), b[len(b) // 2], b[min(len(b) - 1, len(b) * 99 // 100)],
                          b[-1], statistics.median(walls) * 1000))

    # Updates that fail: the guest goes on under the same process.
    def failed_update(name, body, status, needle):
        before = v.counts()[-1]
        st, err = request(sock, 'PUT', '/live-update', body)
        msg = (err or {}).get('fault_message', '')
        check(name, st == status and needle in msg, '%s %s' % (st, err))
        check(name + '-guest-goes-on', pid_alive(pid) and v.wait_count(before + 3, alive=alive)
              and contiguous(v.counts(), 1), v.counts()[-5:])

    failed_update('not-vmm-false', {'binary': '/bin/false'}, 400, 'is it vmm?')
    failed_update('not-executable', {'binary': disk}, 400, 'not an executable file')
    failed_update('missing-binary', {'binary': os.path.join(tmp, 'nope')}, 400, 'nope')
    def fake(mode):
        path = os.path.join(tmp, 'fake-' + mode)
        with open(path, 'w') as f:
            f.write(FAKE_NEW.replace('MODE', repr(mode)))
        os.chmod(path, 0o755)
        return {'binary': path}

    failed_update('new-exits-after-state', fake('exit-after-state'), 500, 'went away')
    failed_update('new-refuses', fake('refuse'), 500, 'this new process refuses')
    failed_update('new-answers-garbage', fake('garbage'), 500, 'loading the state')
    failed_update('new-hangs', fake('hang'), 500, 'did not answer within 10 s')
    # And a real update still works after all that.
    st, body = request(sock, 'PUT', '/live-update')
    check('update-after-failures', st == 200 and body['pid'] != pid, body)
    if st == 200:
        reap(pid)
        pid = body['pid']
        check('counting-after', v.wait_count(v.counts()[-1] + 3, alive=alive))

    # A paused VM is handed over paused, and resumes under the new process.
    request(sock, 'PATCH', '/vm', {'state': 'Paused'})
    st, body = request(sock, 'PUT', '/live-update')
    ok = st == 200
    if ok:
        reap(pid)
        pid = body['pid']
    st2, info = request(sock, 'GET', '/')
    check('paused-update-stays-paused', ok and info.get('state') == 'Paused', '%s %s' % (body, info))
    request(sock, 'PATCH', '/vm', {'state': 'Resumed'})
    check('paused-update-resumes', v.wait_count(v.counts()[-1] + 3, alive=alive) and
          contiguous(v.counts(), 1), v.counts()[-5:])

    # A snapshot for the restore part below, taken under an updated process.
    state, mem = os.path.join(tmp, 'vm.state'), os.path.join(tmp, 'vm.mem')
    request(sock, 'PATCH', '/vm', {'state': 'Paused'})
    v.pump(0.2)
    snap_at = v.counts()[-1]
    st, err = request(sock, 'PUT', '/snapshot/create', {'snapshot_path': state,
                                                         'mem_file_path': mem})
    check('snapshot-after-updates', st == 204, err)
    request(sock, 'PATCH', '/vm', {'state': 'Resumed'})

    # The end: SIGTERM to the current process, status 143, its socket file gone.
    os.kill(pid, signal.SIGTERM)
    code = reap(pid)
    check('last-sigterm-143', code == -signal.SIGTERM or code == 143, code)
    v.pump(0.5)
    check('socket-removed', not os.path.exists(sock), os.listdir(tmp))
    seq = v.counts()
    check('count-contiguous-to-end', contiguous(seq, 1), seq[-5:])
    # Each of the last 64 steps left its sector as the guest wrote it: none lost, none
    # replayed from an older step.
    last = seq[-1]
    with open(disk, 'rb') as f:
        img = f.read(64 * 512)
    wrong = []
    for sector in range(64):
        want = [last - ((last - sector) % 64)] + ([last + 1] if (last + 1) % 64 == sector
                                                  else [])
        got = img[sector * 512:(sector + 1) * 512]
        if got not in [fill(n, sector) for n in want]:
            wrong.append(sector)
    check('disk-image', not wrong, 'sectors %r' % wrong[:8])
    v.finish()

    # `vmm run ... --timeout 4`: the timeout counts across an update (the new process gets what
    # is left of it), and the VM configured from argv goes over as well.
    t0 = time.monotonic()
    r = Proc([vmm, 'run', '--kernel', kernel, '--cmdline', 't.scenario=count t.cycles=20000000',
              '--timeout', '4', '--api-sock', sock], sock)
    r.wait_count(3)
    st, body = request(sock, 'PUT', '/live-update')
    check('run-form-update', st == 200, body)
    if st == 200:
        reap(r.p.pid)
        code = reap(body['pid'], secs=15)
        took = time.monotonic() - t0
        check('timeout-across-update', code == 124 and took < 6, 'exit %s after %.1f s' %
              (code, took))
    r.kill()

    # A restored VM is live-updated too: its RAM is a memfd filled from the snapshot file on
    # first touch, handed over with the file; the file is never written.
    def digest(path):
        with open(path, 'rb') as f:
            return hash(f.read())
    mem_digest = digest(mem)
    r = Proc([vmm, 'restore', state, '--mem', mem, '--api-sock', sock], sock)
    pid = r.p.pid
    ok = r.wait_count(snap_at + 3)
    check('restore', ok and contiguous(counts_across(v.out, r.out), snap_at + 1),
          '%r %r' % (r.counts()[:5], b'' if r.p.poll() is None else r.p.stderr.read()[-500:]))
    st, body = request(sock, 'PUT', '/live-update')
    ok = st == 200
    if ok:
        check('restored-old-exits-0', reap(pid) == 0)
        pid = body['pid']
    check('restored-update', ok, body)
    check('restored-update-goes-on', r.wait_count(r.counts()[-1] + 3, alive=alive) and
          contiguous(counts_across(v.out, r.out), snap_at + 1), r.counts()[-5:])
    # A snapshot of it: the pages it wrote (in the memfd) over the file's (the rest).
    state2, mem2 = os.path.join(tmp, 'vm2.state'), os.path.join(tmp, 'vm2.mem')
    request(sock, 'PATCH', '/vm', {'state': 'Paused'})
    r.pump(0.2)
    at2 = r.counts()[-1]
    st, err = request(sock, 'PUT', '/snapshot/create', {'snapshot_path': state2,
                                                         'mem_file_path': mem2})
    check('snapshot-of-restored', st == 204, err)
    os.kill(pid, signal.SIGKILL)
    reap(pid)
    check('snapshot-file-untouched', digest(mem) == mem_digest)
    r2 = Proc([vmm, 'restore', state2, '--mem', mem2])
    check('restore-of-restored', r2.wait_count(at2 + 3) and
          contiguous(counts_across(r.out, r2.out), at2 + 1), r2.counts()[:5])
    r2.kill()
    r.finish()

    # Two vCPUs, the AP storing in a loop all along (the guest fails if it stops): 20 updates,
    # then a snapshot, SIGKILL and a restore. (The CPUID check once refused SMP guests: HTT,
    # which vmm sets for them, is not in KVM's supported set.)
    sdisk = os.path.join(tmp, 'smp.img')
    with open(sdisk, 'wb') as f:
        f.truncate(1 << 20)
    s, st = start_count_guest(vmm, kernel, sock, sdisk, 'lu-smp', vcpus=2)
    check('smp-start', st == 204 and s.wait_count(3) and b'READY aps=1' in s.out,
          s.out[-300:])
    pid = s.p.pid
    bad = []
    for i in range(20):
        st, body = request(sock, 'PUT', '/live-update')
        if st != 200:
            bad.append('update %d: %s %s' % (i, st, body))
            break
        reap(pid)
        pid = body['pid']
        if not s.wait_count(s.counts()[-1] + 2, alive=alive):
            bad.append('update %d: no count after it: %r' % (i, s.out[-200:]))
            break
    check('smp-updates', not bad and contiguous(s.counts(), 1), bad[:2] or s.counts()[-5:])
    sstate, smem = os.path.join(tmp, 'smp.state'), os.path.join(tmp, 'smp.mem')
    request(sock, 'PATCH', '/vm', {'state': 'Paused'})
    s.pump(0.2)
    at3 = s.counts()[-1]
    st, err = request(sock, 'PUT', '/snapshot/create', {'snapshot_path': sstate,
                                                         'mem_file_path': smem})
    check('smp-snapshot', st == 204, err)
    os.kill(pid, signal.SIGKILL)
    reap(pid)
    s.finish()
    r3 = Proc([vmm, 'restore', sstate, '--mem', smem])
    # 70 steps: more than the guest's COUNT_AP_STEPS, so a lost AP would have failed it.
    check('smp-restore', r3.wait_count(at3 + 70) and
          contiguous(counts_across(s.out, r3.out), at3 + 1) and
          b'MICRO FAIL' not in r3.out, r3.out[-300:])
    r3.kill()
    shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == '__main__':
    sys.exit(main())
