#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Signals and the terminal, under a pty (issue 12, defects 2 and 4).

vmm runs a micro-guest with its console on a pseudo-terminal, as a user at a shell would. Then:
- every signal whose default action ends a process and that vmm does not handle itself
  (SIGUSR1, SIGUSR2, SIGALRM, SIGPROF, SIGVTALRM, SIGXCPU, SIGXFSZ, SIGPWR, SIGSYS, SIGTRAP,
  SIGSTKFLT, SIGIO, SIGQUIT) ends it by that signal, with the terminal restored;
- SIGINT, SIGTERM and SIGHUP stop the guest: exit 128 + n, one line on stderr, terminal
  restored;
- SIGTERM at random moments right after the start (while raw mode is being entered) never
  leaves the terminal raw and never kills vmm without its line;
- SIGTERM to a guest that reboots in a loop with --on-reboot restart is never lost.

usage: signals.py VMM MICRO_BZIMAGE   (exit 0 pass, 1 fail, 77 no /dev/kvm)
"""
import os
import pty
import random
import select
import signal
import subprocess
import sys
import tempfile
import termios
import time

from vmmtest import become_subreaper, reap, request, wait_socket

RAW_BITS = termios.ICANON | termios.ECHO | termios.ISIG


class Run:
    """vmm with stdin and stdout on a fresh pty, stderr on a pipe."""

    def __init__(self, vmm, kernel, cmdline, extra=()):
        self.master, self.slave = pty.openpty()
        self.before = termios.tcgetattr(self.slave)
        args = [vmm, 'run', '--kernel', kernel, '--cmdline', cmdline]
        if '--timeout' not in extra:
            args += ['--timeout', '60']
        self.p = subprocess.Popen(args + list(extra), stdin=self.slave, stdout=self.slave,
                                  stderr=subprocess.PIPE, start_new_session=True)
        self.out = b''

    def pump(self, secs):
        """Read the console for secs (so that the guest never blocks on a full pty)."""
        end = time.monotonic() + secs
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    return

    def wait_for(self, text, secs=20):
        end = time.monotonic() + secs
        while text.encode() not in self.out and time.monotonic() < end:
            self.pump(0.05)
            if self.p.poll() is not None:
                break
        return text.encode() in self.out

    def finish(self, secs=10):
        end = time.monotonic() + secs
        while self.p.poll() is None and time.monotonic() < end:
            self.pump(0.05)
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
            return None, b'', True
        err = self.p.stderr.read()
        after = termios.tcgetattr(self.slave)
        restored = (after[3] & RAW_BITS) == (self.before[3] & RAW_BITS) and \
            after[0] == self.before[0]
        os.close(self.master)
        os.close(self.slave)
        return self.p.returncode, err, restored


failures = []


def check(name, ok, detail=''):
    if ok:
        print('PASS %s' % name)
    else:
        print('FAIL %s: %s' % (name, detail))
        failures.append(name)


def main():
    vmm, kernel = sys.argv[1], sys.argv[2]
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        print('SKIP: no usable /dev/kvm')
        return 77

    # Signals vmm leaves to their default action: it dies of them, terminal restored.
    fatal = ['SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGPROF', 'SIGVTALRM', 'SIGXCPU', 'SIGXFSZ',
             'SIGPWR', 'SIGSYS', 'SIGTRAP', 'SIGSTKFLT', 'SIGIO', 'SIGQUIT']
    for name in fatal:
        sig = getattr(signal, name)
        r = Run(vmm, kernel, 't.scenario=hang')
        up = r.wait_for('MICRO HANG')
        r.p.send_signal(sig)
        code, err, restored = r.finish()
        check('%s-dies' % name, up and code == -sig,
              'up %s, exit %s, stderr %r' % (up, code, err[-200:]))
        check('%s-terminal' % name, code is not None and restored, 'terminal left raw')

    # The signals vmm handles: status 128 + n and one line.
    for name, text in [('SIGINT', b'interrupted (SIGINT)'), ('SIGTERM', b'terminated (SIGTERM)'),
                       ('SIGHUP', b'hangup (SIGHUP)')]:
        sig = getattr(signal, name)
        r = Run(vmm, kernel, 't.scenario=hang')
        up = r.wait_for('MICRO HANG')
        r.p.send_signal(sig)
        code, err, restored = r.finish()
        check('%s-status' % name, up and code == 128 + sig and text in err,
              'exit %s, stderr %r' % (code, err[-200:]))
        check('%s-terminal' % name, restored, 'terminal left raw')

    # SIGTERM at any moment right after the start, while the terminal goes raw.
    rng = random.Random(int(os.environ.get('VMM_TEST_SEED', '12')))
    bad = []
    for i in range(60):
        r = Run(vmm, kernel, 't.scenario=hang')
        time.sleep(rng.uniform(0, 0.03))
        r.p.send_signal(signal.SIGTERM)
        code, err, restored = r.finish()
        # Before main() ran the default action still applies (the terminal was not raw then).
        if not restored or code not in (143, -signal.SIGTERM) or \
                (code == 143 and b'terminated (SIGTERM)' not in err):
            bad.append((code, restored, err[-120:]))
    check('SIGTERM-at-start-x60', not bad, repr(bad[:3]))

    # A guest that reboots in a loop: no SIGTERM is lost, each gets 143 and its line.
    bad = []
    for i in range(30):
        r = Run(vmm, kernel, 't.scenario=reset', ['--on-reboot', 'restart'])
        r.pump(rng.uniform(0, 0.3))
        r.p.send_signal(signal.SIGTERM)
        code, err, restored = r.finish(secs=5)
        if code != 143 or b'terminated (SIGTERM)' not in err or not restored:
            bad.append((code, restored, err[-120:]))
    check('SIGTERM-restart-loop-x30', not bad, repr(bad[:3]))

    # A guest that reboots faster than the timeout, with restart: the timeout still fires
    # (issue 12, defect 1: it was re-armed at every restart and never fired).
    r = Run(vmm, kernel, 't.scenario=reset', ['--on-reboot', 'restart', '--timeout', '2'])
    t0 = time.monotonic()
    code, err, restored = r.finish(secs=15)
    took = time.monotonic() - t0
    check('restart-loop-timeout', code == 124 and took < 10 and b'timeout' in err,
          'exit %s after %.1f s, stderr %r' % (code, took, err[-200:]))
    check('restart-loop-timeout-terminal', restored, 'terminal left raw')

    live_update_terminal(vmm, kernel)
    print('%d failed' % len(failures))
    return 1 if failures else 0


def live_update_terminal(vmm, kernel):
    """A live update under a terminal: the terminal stays raw across it (the old process
    leaves it so), the new process reads the console (Ctrl-A x stops it, 130) and restores the
    terminal's mode from before vmm started when it exits."""
    become_subreaper()
    tmp = tempfile.mkdtemp(prefix='vmm-lu-pty-')
    sock = os.path.join(tmp, 'api.sock')
    r = Run(vmm, kernel, 't.scenario=count t.cycles=20000000', ['--api-sock', sock])
    wait_socket(sock)
    check('lu-pty-counting', r.wait_for('COUNT 3'), r.out[-200:])
    raw = lambda: (termios.tcgetattr(r.slave)[3] & RAW_BITS) == 0  # noqa: E731
    check('lu-pty-raw', raw())
    st, body = request(sock, 'PUT', '/live-update')
    check('lu-pty-update', st == 200, body)
    if st != 200:
        r.p.kill()
        return
    pid = body['pid']
    old = r.p.wait(10)
    check('lu-pty-old-exits-0-terminal-still-raw', old == 0 and raw(), '%s %s' % (old, raw()))
    n = len(r.out)
    r.pump(1.0)
    check('lu-pty-new-prints', b'COUNT' in r.out[n:], r.out[-100:])
    os.write(r.master, b'\x01x')
    code = reap(pid)
    r.pump(0.2)
    after = termios.tcgetattr(r.slave)
    restored = (after[3] & RAW_BITS) == (r.before[3] & RAW_BITS) and after[0] == r.before[0]
    check('lu-pty-ctrl-a-x-130', code == 130, code)
    check('lu-pty-terminal-restored', restored, 'terminal left raw after the new process')
    check('lu-pty-socket-removed', not os.path.exists(sock), os.listdir(tmp))
    os.close(r.master)
    os.close(r.slave)


if __name__ == '__main__':
    sys.exit(main())
