#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""User-mode networking's helper across a VM's life: live update, snapshot, restore, exit.

A counting micro-guest (it drives its disk only; the network interface is there for the
helper's sake) runs with --net user and a hostfwd port. Its helper, vmm-slirp, must
 - listen on the port while the VM runs, and be one process;
 - stay the same process, port listening, across live updates (the new vmm adopts its socket,
   the old one's goodbye is ignored);
 - end, releasing the port, when the vmm holding its socket is killed (SIGKILL);
 - be started anew by a restored VM, on the same port;
 - end when the VM powers off or is stopped.
The guest's TCP connections through slirp are not checked here (the micro-guest has no
TCP/IP): the linux suite's cloud-net-user does that.

usage: net_user_guest.py VMM MICRO_BZIMAGE   (exit 0 pass, 1 fail, 77 no /dev/kvm or no helper)
"""
import os
import shutil
import signal
import socket
import sys
import tempfile
import time

from vmmtest import (COUNT_GUEST, Proc, become_subreaper, check, pid_alive, reap, request,
                     summary)


def helpers():
    """Pids of the running vmm-slirp processes that are ours (our children: we are their
    subreaper, as they leave their parent at once)."""
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index('(') + 1:st.rindex(')')]
        fields = st[st.rindex(')') + 2:].split()
        if name == 'vmm-slirp' and fields[0] != 'Z' and int(fields[1]) == os.getpid():
            out.append(int(d))
    return out


def listening(port):
    s = socket.socket()
    try:
        s.bind(('127.0.0.1', port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def until(cond, secs=10):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def main():
    vmm, kernel = sys.argv[1], sys.argv[2]
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        print('SKIP: no usable /dev/kvm')
        return 77
    if not os.access(os.path.join(os.path.dirname(vmm), 'vmm-slirp'), os.X_OK):
        print('SKIP: no vmm-slirp beside vmm (built without libslirp)')
        return 77
    become_subreaper()
    tmp = tempfile.mkdtemp(prefix='vmm-nu-')
    sock = os.path.join(tmp, 'api.sock')
    disk = os.path.join(tmp, 'disk.img')
    state, mem = os.path.join(tmp, 'vm.state'), os.path.join(tmp, 'vm.mem')
    with open(disk, 'wb') as f:
        f.truncate(1 << 20)
    port = free_port()
    # Two devices: the disk it counts on, and the network interface after it.
    cmdline = COUNT_GUEST.replace('t.ndev=1', 't.ndev=2')
    v = Proc([vmm, 'run', '--kernel', kernel, '--cmdline', cmdline, '--memory', '64',
              '--disk', disk, '--net', 'user,hostfwd=tcp::%d-:80' % port, '--api-sock', sock],
             sock)
    check('counting', v.wait_count(3), v.out[-300:])
    hs = helpers()
    check('one-helper', len(hs) == 1, hs)
    check('port-listening', listening(port))
    helper = hs[0] if hs else -1

    # Live updates: the same helper serves each new vmm.
    pid = v.p.pid
    bad = []
    for i in range(5):
        st, body = request(sock, 'PUT', '/live-update')
        if st != 200 or not body:
            bad.append('update %d: %s %s' % (i, st, body))
            break
        old, pid = pid, body['pid']
        code = reap(old)
        if code != 0:
            bad.append('update %d: old process exited %s' % (i, code))
        if not v.wait_count(v.counts()[-1] + 1, alive=lambda: pid_alive(pid)):
            bad.append('update %d: no count after it' % i)
            break
        # The old process has gone: its goodbye did not end the helper.
        if helpers() != [helper] or not listening(port):
            bad.append('update %d: helpers %s, port listening %s' % (i, helpers(),
                                                                     listening(port)))
    check('live-update-keeps-helper', not bad, bad[:3])

    # Snapshot, then SIGKILL: the helper sees its socket close, ends, frees the port.
    st, _ = request(sock, 'PATCH', '/vm', {'state': 'Paused'})
    st2, err = request(sock, 'PUT', '/snapshot/create', {'snapshot_path': state,
                                                         'mem_file_path': mem})
    check('snapshot', st == 204 and st2 == 204, (st, st2, err))
    at = v.counts()[-1]
    os.kill(pid, signal.SIGKILL)
    reap(pid)
    check('kill-ends-helper', until(lambda: not helpers()), helpers())
    check('kill-frees-port', until(lambda: not listening(port)))

    # Restore: a new helper on the same port; the guest counts on.
    r = Proc([vmm, 'restore', state, '--mem', mem])
    check('restore-continues', r.wait_count(at + 2), r.out[-300:])
    hs = helpers()
    check('restore-new-helper', len(hs) == 1 and hs[0] != helper, hs)
    check('restore-port-listening', listening(port))

    # A stop: vmm and helper both end.
    r.p.send_signal(signal.SIGTERM)
    code, err = r.finish()
    check('sigterm', code == 128 + signal.SIGTERM, (code, err))
    check('stop-ends-helper', until(lambda: not helpers()), helpers())
    check('stop-frees-port', until(lambda: not listening(port)))
    for h in helpers():
        os.kill(h, signal.SIGKILL)
    shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == '__main__':
    sys.exit(main())
