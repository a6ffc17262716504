"""Run a server so that nothing it starts outlives pytest.

``python tests/reaper.py <pytest pid> -- <command ...>`` runs the command as its child and makes
itself the *child subreaper* of everything the command starts (Linux ``PR_SET_CHILD_SUBREAPER``):
a grandchild whose parent exits is re-parented here rather than to init, even one that left the
process group with ``setsid()`` as circus (BentoML's process manager) does for its workers. When

* pytest is gone (killed with SIGTERM or SIGKILL: this process's parent changes), or
* this process is asked to stop (SIGTERM/SIGINT/SIGHUP: ``proc.terminate()``, ``killpg``), or
* the command exits by itself,

it sends SIGTERM to the command, waits for it (``REAPER_GRACE`` seconds, 10 by default), then
SIGTERM and after 5 s SIGKILL to every descendant still running, and exits as the command did
(the same exit code, or killed by the same signal), so a caller's ``Popen.returncode`` means what
it meant without the wrapper. Only the standard library: it starts in tens of milliseconds.

``reaped(cmd)`` (for ``subprocess.Popen``) is the way the test fixtures use it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def reaped(cmd: list[str]) -> list[str]:
    """``cmd`` wrapped so that it, and everything it starts, dies with this (pytest) process."""
    return [sys.executable, str(Path(__file__).resolve()), str(os.getpid()), "--", *cmd]


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}, {value}) failed")


def descendants(root: int) -> list[int]:
    """Every process under ``root`` (by parent pid, read from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":  # zombies are dead already: reaping them is enough
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            out.append(pid)
            todo.append(pid)
    return out


def _reap() -> list[tuple[int, int]]:
    """Collect every exited child (the command's orphans are our children now)."""
    done = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, status))


def _signal_all(sig: int) -> bool:
    """Send ``sig`` to every descendant; False when there is none left."""
    pids = descendants(os.getpid())
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return bool(pids)


def _wait_gone(seconds: float, child: int, status: list[int]) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        for pid, code in _reap():
            if pid == child:
                status.append(code)
        if not descendants(os.getpid()):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def main(argv: list[str]) -> int:
    parent, cmd = int(argv[0]), argv[argv.index("--") + 1:]
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    stop = []
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, _frame: stop.append(signum))
    if os.getppid() != parent:  # pytest died before we got here
        return 1
    child = subprocess.Popen(cmd)  # stdout, stderr, cwd and environment: ours, as given
    status: list[int] = []
    while not stop and not status and os.getppid() == parent:
        for pid, code in _reap():
            if pid == child.pid:
                status.append(code)
        time.sleep(0.1)
    if not status:
        try:
            os.kill(child.pid, signal.SIGTERM)  # not send_signal: we reap, not Popen
        except ProcessLookupError:
            pass
        grace = float(os.environ.get("REAPER_GRACE", "10"))
        deadline = time.monotonic() + grace
        while not status and time.monotonic() < deadline:
            for pid, code in _reap():
                if pid == child.pid:
                    status.append(code)
            time.sleep(0.05)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _signal_all(sig) or _wait_gone(5.0, child.pid, status):
            break
    if not status:  # SIGKILLed above: reap it
        status.append(os.waitpid(child.pid, 0)[1])
    code = status[0]
    if os.WIFSIGNALED(code):
        sig = os.WTERMSIG(code)
        for stop_sig in STOP_SIGNALS:
            signal.signal(stop_sig, signal.SIG_DFL)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)  # end as the command ended
        time.sleep(1)
        return 128 + sig
    return os.WEXITSTATUS(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
