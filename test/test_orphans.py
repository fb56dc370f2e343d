"""No orphans: whatever a tool or test starts dies with it, also when the tool is SIGKILLed
(as a timeout does), so nothing keeps running on a robot or a CI runner afterwards."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from conftest import REPO, shared_video
from edge_tracker.tools.procs import run, spawn


def _children(pid: int) -> List[int]:
    out: List[int] = []
    for task in Path(f'/proc/{pid}/task').glob('*/children'):
        try:
            out += [int(c) for c in task.read_text().split()]
        except (OSError, ValueError):
            pass
    return out


def _identity(pid: int) -> Optional[Tuple[str, str]]:
    """(start time, state) of a process, None once it is gone; the start time tells a reused
    pid apart."""
    try:
        fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return fields[19], fields[0]


def _cmdline(pid: int) -> str:
    try:
        return Path(f'/proc/{pid}/cmdline').read_bytes().replace(b'\0', b' ').decode()
    except OSError:
        return ''


def _still_running(known: Dict[int, Tuple[str, str]]) -> List[int]:
    """Those of `known` still alive (a zombie waiting for init to reap it is not)."""
    left = []
    for pid, (start, _state) in known.items():
        now = _identity(pid)
        if now is not None and now[0] == start and now[1] != 'Z':
            left.append(pid)
    return left


def _wait_gone(known: Dict[int, Tuple[str, str]], timeout: float) -> List[int]:
    end = time.monotonic() + timeout
    while True:
        left = _still_running(known)
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.1)


def test_children_die_with_a_sigkilled_parent(tmp_path):
    """A parent that starts children (which start their own) through procs.spawn, then is
    SIGKILLed: the kernel ends every one of them."""
    pids_file = tmp_path / 'pids'
    script = textwrap.dedent(f'''
        import sys, time
        from edge_tracker.tools.procs import spawn
        sleeper = [sys.executable, '-c', 'import time; time.sleep(600)']
        nested = [sys.executable, '-c',
                  'import sys, time; from edge_tracker.tools.procs import spawn; '
                  'p = spawn({{sleeper!r}}); print(p.pid, flush=True); time.sleep(600)']
        kids = [spawn(sleeper), spawn(sleeper)]
        with open({str(pids_file)!r}, 'w') as f:
            f.write(' '.join(str(k.pid) for k in kids) + '\\n')
        time.sleep(600)
    ''')
    parent = spawn([sys.executable, '-c', script])
    try:
        end = time.monotonic() + 60
        while not (pids_file.exists() and pids_file.read_text().endswith('\n')):
            assert time.monotonic() < end, 'the parent never started its children'
            assert parent.poll() is None, f'the parent exited with {parent.returncode}'
            time.sleep(0.1)
        kids = {int(p): _identity(int(p)) for p in pids_file.read_text().split()}
        assert all(v is not None for v in kids.values())
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait_gone(kids, 5.0) == [], 'children outlived their SIGKILLed parent'
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_timeout_kills_the_whole_group():
    """procs.run's timeout (what the tests use around tools) ends the child and its children."""
    code = ('import sys, time; from edge_tracker.tools.procs import spawn; '
            "p = spawn([sys.executable, '-c', 'import time; time.sleep(600)']); "
            'print(p.pid, flush=True); time.sleep(600)')
    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as info:
        run([sys.executable, '-c', code], timeout=600, idle_timeout=8)
    assert time.monotonic() - t0 < 60
    grandchild = int(info.value.output.split()[0])
    ident = _identity(grandchild)
    assert ident is None or ident[1] == 'Z' or _wait_gone({grandchild: ident}, 5.0) == []


def test_a_sigkilled_bench_leaves_no_node_behind(tmp_path):
    """The issue's case: `bench --quick` killed (as a test timeout does) once its camera,
    detector and tracker run; none of them may keep running."""
    shared_video('car-detection.mp4')
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    log = open(tmp_path / 'bench.log', 'wb')
    bench = spawn([sys.executable, '-m', 'edge_tracker.tools.bench', '--quick',
                   '--json', str(tmp_path / 'bench.json')], cwd=REPO, env=env, stdout=log,
                  stderr=log)
    nodes: Dict[int, Tuple[str, str]] = {}
    try:
        # The ROS variant starts after the predict and naive loops: readiness, not a clock.
        end = time.monotonic() + 600
        wanted = ('camera_node', 'detector_node', 'tracker_node')
        while True:
            assert bench.poll() is None, \
                f'bench ended ({bench.returncode}) before its nodes ran:\n' + \
                (tmp_path / 'bench.log').read_text()[-3000:]
            assert time.monotonic() < end, 'bench never started its nodes'
            kids = {pid: _cmdline(pid) for pid in _children(bench.pid)}
            found = {pid: cmd for pid, cmd in kids.items() if any(w in cmd for w in wanted)}
            if len(found) == 3:
                nodes = {pid: _identity(pid) for pid in found}
                break
            time.sleep(0.2)
        time.sleep(1.0)   # well inside their start-up (model loading)
        assert all(v is not None for v in nodes.values())
        bench.send_signal(signal.SIGKILL)
        bench.wait(10)
        left = _wait_gone(nodes, 5.0)
        assert left == [], f'left running after bench was killed: ' \
                           f'{[(p, _cmdline(p)) for p in left]}'
    finally:
        log.close()
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        for pid in _still_running(nodes):   # never leave them to the next test
            os.kill(pid, signal.SIGKILL)
