#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The VMM's share of a host kernel update (issue 11): vmm's 'hostupdate prepare' and 'resume'
against QEMU 10's cpr-reboot mode (with x-ignore-shared), on the same micro-guest with its RAM
in the same kind of shared file, on this machine's /dev/kvm. Run by bench/hostupdate.sh; see
bench/README.md for what every number means.

No kexec happens here: the kernel's part of the guest's pause (the jump, the new kernel's boot,
the host's own init) is measured in the QEMU TCG test host by bench/hostupdate.sh --kexec.
What is measured is what each VMM adds to it, cycle after cycle on one VM per VMM and size:
  - save: vmm: pause, snapshot in place, sync (hostupdate prepare's own report; the manifest
    is written before the pause, and the process stop is not counted: with a kexec the
    paused processes go with the kernel);
    QEMU: stop, migrate to file: with x-ignore-shared in mode cpr-reboot, fsync of the state
    file and sync (vmm's sync is the whole host's too);
  - restore: vmm: hostupdate resume's report, exec of 'vmm restore' to the VM seen running;
    QEMU: exec of a QEMU with -incoming defer to query-status 'running' (QMP connect,
    capabilities, migrate-incoming of the file, cont).
The guest touched all its RAM before the first cycle, and must answer on its console after
each (QEMU) or be Running (vmm).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import live_update as lu  # noqa: E402  (its QMP client, console reader, reaping)

NUM = r'([0-9.]+) ms'


def med(vals):
    return statistics.median(vals) if vals else float('nan')


def rng(vals):
    return '%.1f–%.1f' % (min(vals), max(vals)) if vals else '-'


class Console:
    """A VMM's console (stdout) on a pipe, read by a thread."""

    def __init__(self, path):
        self.r, self.w = os.pipe()
        os.set_inheritable(self.r, False)
        self.lines = lu.Lines(self.r, tee=open(path, 'ab'))


def vmm_cycles(cfg, mib, runs):
    d = os.path.join(cfg.work, 'vmm-%d' % mib)
    os.makedirs(d)
    ram, sock, states = os.path.join(cfg.ramdir, 'vmm-%d.ram' % mib), os.path.join(d, 'api.sock'), \
        os.path.join(d, 'states')
    con = Console(os.path.join(d, 'console'))
    p = subprocess.Popen([cfg.vmm, 'run', '--kernel', cfg.guest, '--memory', '%dM,file=%s' % (mib, ram),
                          '--cmdline', lu.guest_cmdline(cfg), '--api-sock', sock, '--id', 'hu'],
                         stdin=subprocess.DEVNULL, stdout=con.w, stderr=open(os.path.join(d, 'err'), 'ab'))
    lu.LIVE.add(p.pid)
    os.close(con.w)
    con.lines.wait(r'GAP READY', 0, 60 + 30 * mib // 1024)
    res = {'save': [], 'restore': [], 'parts': []}
    pid = p.pid
    for i in range(runs + 1):
        pr = subprocess.run([cfg.vmm, 'hostupdate', 'prepare', '--state-dir', states, sock],
                            capture_output=True, text=True, timeout=300)
        m = re.search(r'pause %s, states saved %s, sync %s \(before the pause: manifest %s\)'
                      % ((NUM,) * 4), pr.stdout)
        if pr.returncode or not m:
            raise lu.BenchError('vmm hostupdate prepare: %s %s' % (pr.stdout, pr.stderr))
        lu.reap(pid, 10)
        pause, state, sync, _manifest = (float(x) for x in m.groups())
        parts = [pause, state, 0.0, sync]  # the manifest is written before the pause
        rs = subprocess.run([cfg.vmm, 'hostupdate', 'resume', '--state-dir', states],
                            capture_output=True, text=True, timeout=300)
        m2 = re.search(r'restored in %s, 0 failed' % NUM, rs.stdout)
        m3 = re.search(r'restored, pid (\d+)', rs.stdout)
        if rs.returncode or not m2 or not m3:
            raise lu.BenchError('vmm hostupdate resume: %s %s' % (rs.stdout, rs.stderr))
        pid = int(m3.group(1))
        lu.LIVE.add(pid)
        if lu.api(sock, 'GET', '/')['state'] != 'Running':
            raise lu.BenchError('vmm: the restored VM is not running')
        if i == 0:
            continue  # warm-up: page cache, first exec
        res['save'].append(sum(parts))
        res['parts'].append(parts)
        res['restore'].append(float(m2.group(1)))
    lu.kill(pid)
    os.unlink(ram)
    return res


def qemu_argv(cfg, mib, ram, qmp, extra=()):
    return [cfg.qemu, '-L', cfg.qemu_data, '-M', 'microvm,memory-backend=ram0', '-accel', 'kvm',
            '-cpu', cfg.qemu_cpu, '-smp', '1', '-m', '%dM' % mib,
            '-object', 'memory-backend-file,id=ram0,size=%dM,mem-path=%s,share=on' % (mib, ram),
            '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio',
            '-kernel', cfg.guest, '-append', lu.guest_cmdline(cfg),
            '-qmp', 'unix:%s,server=on,wait=off' % qmp] + list(extra)


def cpr_reboot_setup(q):
    q.cmd('migrate-set-capabilities', capabilities=[{'capability': 'x-ignore-shared',
                                                      'state': True}])
    q.cmd('migrate-set-parameters', mode='cpr-reboot')


def wait_migrate(q):
    while True:
        st = q.cmd('query-migrate')
        if st.get('status') in ('completed', 'failed', 'cancelled'):
            break
        time.sleep(0.0005)
    if st['status'] != 'completed':
        raise lu.BenchError('QEMU migration %s: %s' % (st['status'], st.get('error-desc')))


def qemu_cycles(cfg, mib, runs):
    d = os.path.join(cfg.work, 'qemu-%d' % mib)
    os.makedirs(d)
    ram, state = os.path.join(cfg.ramdir, 'qemu-%d.ram' % mib), os.path.join(d, 'vm.state')
    res = {'save': [], 'restore': [], 'parts': []}
    n = 0

    def start(extra=()):
        nonlocal n
        n += 1
        qmp = os.path.join(d, 'qmp%d.sock' % n)
        con = Console(os.path.join(d, 'console'))
        p = subprocess.Popen(qemu_argv(cfg, mib, ram, qmp, extra), stdin=subprocess.PIPE,
                             stdout=con.w, stderr=open(os.path.join(d, 'err'), 'ab'))
        lu.LIVE.add(p.pid)
        os.close(con.w)
        return p, con, lu.QMP(qmp, alive=lambda: p.poll() is None)

    p, con, q = start()
    con.lines.wait(r'GAP READY', 0, 60 + 30 * mib // 1024)
    for i in range(runs + 1):
        cpr_reboot_setup(q)
        t0 = lu.now_ns()
        q.cmd('stop')
        t1 = lu.now_ns()
        q.cmd('migrate', uri='file:' + state)
        wait_migrate(q)
        fd = os.open(state, os.O_RDONLY | os.O_CLOEXEC)
        os.fsync(fd)
        os.close(fd)
        t2 = lu.now_ns()
        os.sync()
        t3 = lu.now_ns()
        try:
            q.cmd('quit')
        except lu.BenchError:
            pass
        q.close()
        lu.reap(p.pid, 30)
        t4 = lu.now_ns()
        p, con, q = start(['-incoming', 'defer'])
        cpr_reboot_setup(q)
        q.cmd('migrate-incoming', uri='file:' + state)
        wait_migrate(q)
        if q.cmd('query-status')['status'] != 'running':
            q.cmd('cont')
        while q.cmd('query-status')['status'] != 'running':
            time.sleep(0.0005)
        t5 = lu.now_ns()
        # The guest goes on: it answers on its console.
        p.stdin.write(b'?')
        p.stdin.flush()
        con.lines.wait(r'GAP max_us=', 0, 10)
        if i == 0:
            continue
        res['parts'].append([(t1 - t0) / 1e6, (t2 - t1) / 1e6, 0.0, (t3 - t2) / 1e6])
        res['save'].append((t3 - t0) / 1e6)
        res['restore'].append((t5 - t4) / 1e6)
    try:
        q.cmd('quit')
    except lu.BenchError:
        pass
    lu.reap(p.pid, 30)
    os.unlink(ram)
    return res


def report(cfg, results):
    print('## Host update: the VMM\'s share (no kexec), %s' % time.strftime('%Y-%m-%d'))
    print()
    print('Machine: %d CPUs, %s, kernel %s; RAM file on %s; vmm %s; QEMU %s -cpu %s; %d cycles '
          'per VMM and size after one warm-up, medians (min–max), ms.' % (
              os.cpu_count(), cfg.cpu_model, os.uname().release, cfg.ramdir, cfg.vmm,
              cfg.qemu_version, cfg.qemu_cpu, cfg.runs))
    print()
    print('| guest RAM | VMM | pause | state | sync | save | restore | **share** | share vmm/QEMU |')
    print('|---|---|---|---|---|---|---|---|---|')
    for mib, r in results:
        share = {}
        for name in ('vmm', 'QEMU'):
            x = r[name]
            share[name] = [a + b for a, b in zip(x['save'], x['restore'])]
        for name in ('vmm', 'QEMU'):
            x = r[name]
            pause = [p[0] for p in x['parts']]
            state = [p[1] + p[2] for p in x['parts']]
            sync = [p[3] for p in x['parts']]
            ratio = med(share['vmm']) / med(share['QEMU']) if name == 'vmm' else None
            print('| %d MiB | %s | %.1f | %.1f | %.1f | %.1f (%s) | %.1f (%s) | **%.1f** (%s) | %s |'
                  % (mib, name, med(pause), med(state), med(sync), med(x['save']), rng(x['save']),
                     med(x['restore']), rng(x['restore']), med(share[name]), rng(share[name]),
                     '%.2f' % ratio if ratio else ''))
    print()
    print('vmm: state = snapshot in place (the RAM file msync\'d, the state written and '
          'fsync\'d); QEMU: state = migrate to file with x-ignore-shared + fsync.')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--vmm', required=True)
    ap.add_argument('--guest', required=True, help='micro-pvh.elf')
    ap.add_argument('--qemu', required=True)
    ap.add_argument('--qemu-data', required=True)
    ap.add_argument('--qemu-cpu', default='host,-arch-capabilities')
    ap.add_argument('--work', required=True)
    ap.add_argument('--ramdir', default='/dev/shm')
    ap.add_argument('--sizes', default='256,2048')
    ap.add_argument('--runs', type=int, default=5)
    cfg = ap.parse_args()
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(lu.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    lu.host_facts(cfg)
    results = []
    try:
        for s in cfg.sizes.split(','):
            mib = int(s)
            # Alternate which VMM goes first from one size to the next.
            r = {}
            order = ('vmm', 'QEMU') if len(results) % 2 == 0 else ('QEMU', 'vmm')
            for name in order:
                r[name] = (vmm_cycles if name == 'vmm' else qemu_cycles)(cfg, mib, cfg.runs)
            results.append((mib, r))
    finally:
        for pid in list(lu.LIVE):
            if lu.pid_alive(pid):
                lu.kill(pid)
    report(cfg, results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
