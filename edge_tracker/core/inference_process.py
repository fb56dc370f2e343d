"""A Detector in a process of its own, behind the same interface (names, backend, detect,
detect_many, set_options, last_speed_ms).

Why: the detector node's workers share one interpreter lock with its executor thread, and
every inference is hundreds of short Python steps between the network's native calls; each
step waits for the lock while the executor deserialises images. Measured on 2 cores: two
in-process workers took 52 ms per frame in the node against 35.5 ms in a bare loop, with a
quarter of the CPU idle. A process per worker has its own lock; the node's thread for it only
copies the frame into shared memory and waits on a socket (the lock released).

The frame goes through an anonymous shared-memory file (memfd) the parent creates and passes
to the child: no name to leak, nothing left behind when either side is killed. Requests and
results (a few boxes) are pickled over a socket pair. The child dies with its parent
(PR_SET_PDEATHSIG, and the socket's end-of-file), ignores Ctrl-C (its owner decides when to
stop), and a child that died is started again on the next frame.
"""

import mmap
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from edge_tracker.core.errors import ConfigurationError

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class InferenceProcessError(RuntimeError):
    """The inference process failed a request or died; it is restarted on the next one."""


def _shared_file() -> int:
    """An unnamed file in memory (Linux memfd), else an already-unlinked temporary file."""
    if hasattr(os, 'memfd_create'):
        return os.memfd_create('edge_tracker_frame', 0)   # inheritable only via pass_fds
    folder = '/dev/shm' if os.path.isdir('/dev/shm') else None
    handle = tempfile.TemporaryFile(dir=folder)
    fd = os.dup(handle.fileno())
    handle.close()
    return fd


class _Frame:
    """One side's view of the shared frame buffer; grows (never shrinks) to the largest frame."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.map: Optional[mmap.mmap] = None

    def view(self, nbytes: int, grow: bool) -> memoryview:
        if self.map is None or len(self.map) < nbytes:
            if grow:
                os.ftruncate(self.fd, nbytes)
            # The old map is not closed: an array may still look at it (Ultralytics keeps the
            # last input); it is unmapped once nothing does.
            self.map = mmap.mmap(self.fd, nbytes)
        return memoryview(self.map)[:nbytes]

    def close(self) -> None:
        self.map = None


class RemoteDetector:
    """core.detector.Detector(**spec) loaded and run in a child process.

    Thread-safe: detect() calls are serialised; set_options() may come from another thread
    (live parameter changes) and applies from the next frame on. sibling(spec) loads another
    model into the same process (the thermal fallback): no second process, and the fallback
    loads in a fraction of a second since the libraries are already there."""

    def __init__(self, spec: Dict[str, object], log: Callable[[str], None] = print,
                 start_timeout_s: float = 600.0) -> None:
        self._log = log
        self._timeout = start_timeout_s
        self._lock = threading.Lock()            # one request at a time
        self._options_lock = threading.Lock()    # set_options() need not wait for a frame
        self._closed = False
        self._proc: Optional[subprocess.Popen] = None
        self._conn: Optional[Connection] = None
        self._frame: Optional[_Frame] = None
        self.restarts = 0
        self.pid = 0
        self._models: List['RemoteModel'] = []
        main = RemoteModel(self, 0, spec)
        with self._lock:
            self._start()
            self._load(main)
        self._main = main

    # The main model's interface, as Detector has it.
    names = property(lambda self: self._main.names)
    backend = property(lambda self: self._main.backend)
    last_speed_ms = property(lambda self: self._main.last_speed_ms)
    cpu_s = property(lambda self: self._main.cpu_s)   # a sibling counts its own

    def detect(self, frame_bgr: np.ndarray):
        return self._main.detect(frame_bgr)

    def detect_many(self, frames_bgr: Sequence[np.ndarray]) -> List[object]:
        return self._main.detect_many(frames_bgr)

    def set_options(self, **options) -> None:
        self._main.set_options(**options)

    def sibling(self, spec: Dict[str, object]) -> 'RemoteModel':
        """Another model in the same process, with the same interface."""
        model = RemoteModel(self, len(self._models), spec)
        with self._lock:
            self._ensure_running()
            self._load(model)
        return model

    # -- the parent's side ---------------------------------------------------------------

    def _start(self) -> None:
        parent_end, child_end = socket.socketpair()
        frame_fd = _shared_file()
        env = dict(os.environ)
        # The child imports this package from where the parent did (a source tree, a test's
        # sys.path), whatever PYTHONPATH says.
        env['PYTHONPATH'] = os.pathsep.join(
            [_PACKAGE_ROOT] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
        cmd = [sys.executable, '-m', 'edge_tracker.core.inference_process',
               str(child_end.fileno()), str(frame_fd), str(os.getpid())]
        try:
            self._proc = subprocess.Popen(cmd, pass_fds=(child_end.fileno(), frame_fd), env=env,
                                          stdin=subprocess.DEVNULL)
        finally:
            child_end.close()
        self.pid = self._proc.pid
        self._conn = Connection(parent_end.detach())
        self._frame = _Frame(frame_fd)

    def _load(self, model: 'RemoteModel') -> None:
        with self._options_lock:
            model.dirty = False
            options = dict(model.options)
        self._send(('load', model.index, model.spec, options))
        reply = self._reply(self._timeout, loading=True)
        model.names, model.backend = reply[1], reply[2]
        if model not in self._models:
            self._models.append(model)

    def _reply(self, timeout: Optional[float] = None, loading: bool = False):
        conn = self._conn
        try:
            if timeout is not None and not conn.poll(timeout):
                raise InferenceProcessError(f'inference process gave no answer in {timeout:.0f} s')
            reply = conn.recv()
        except (EOFError, OSError) as exc:
            raise self._ended() from exc
        if reply[0] == 'config-error':   # what Detector raises for a model it cannot use
            if loading and not self._models:
                self._stop_child()
            from edge_tracker.core.detector import ModelError
            raise ModelError(reply[1])
        if reply[0] == 'error':
            if loading and not self._models:
                self._stop_child()
            raise InferenceProcessError(reply[1])
        return reply

    def _ensure_running(self) -> None:
        if self._closed:
            raise InferenceProcessError('closed')
        if self._conn is None:
            self.restarts += 1
            self._log(f'inference process ended; starting it again (restart {self.restarts})')
            self._start()
            for model in self._models:   # every model it had, with its current options
                self._load(model)

    def _pending_options(self, model: 'RemoteModel') -> Optional[Dict[str, object]]:
        with self._options_lock:
            if not model.dirty:
                return None
            model.dirty = False
            return dict(model.options)

    def _detect(self, model: 'RemoteModel', frame: np.ndarray):
        with self._lock:
            self._ensure_running()
            view = self._frame.view(frame.nbytes, grow=True)
            # One copy, straight into shared memory (also from a padded, non-contiguous view).
            np.copyto(np.frombuffer(view, frame.dtype).reshape(frame.shape), frame)
            view.release()
            self._send(('detect', model.index, frame.shape, frame.dtype.str,
                        self._pending_options(model)))
            return self._result(model)

    def _detect_many(self, model: 'RemoteModel', frames_bgr: Sequence[np.ndarray]):
        if not frames_bgr:
            return []
        with self._lock:
            self._ensure_running()
            self._send(('detect_many', model.index,
                        [np.ascontiguousarray(f) for f in frames_bgr],
                        self._pending_options(model)))
            return self._result(model)

    def _send(self, request) -> None:
        try:
            self._conn.send(request)
        except OSError as exc:   # the child is gone (a broken pipe)
            raise self._ended() from exc

    def _ended(self) -> InferenceProcessError:
        """Clears up after a child that went away; the error to raise for it."""
        code = self._proc.poll() if self._proc is not None else None
        self._stop_child()
        return InferenceProcessError(f'inference process ended (exit code {code})')

    def _result(self, model: 'RemoteModel'):
        _, dets, speed, cpu_s = self._reply()
        model.last_speed_ms = speed
        model.cpu_s += cpu_s
        return dets

    def _stop_child(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._frame is not None:
            self._frame.close()
            os.close(self._frame.fd)
            self._frame = None
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()   # it holds nothing that needs a clean end
        if self._proc is not None:
            try:
                self._proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass

    def close(self) -> None:
        """Ends the child at once (it holds nothing that needs a clean end); never waits for
        an inference in flight: the lock is not taken."""
        self._closed = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()


class RemoteModel:
    """One model in a RemoteDetector's process, with Detector's interface."""

    def __init__(self, owner: RemoteDetector, index: int, spec: Dict[str, object]) -> None:
        self.owner, self.index, self.spec = owner, index, dict(spec)
        self.options: Dict[str, object] = {}
        self.dirty = False
        self.names: Dict[int, str] = {}
        self.backend = 'unknown'
        self.last_speed_ms: Dict[str, float] = {}
        self.cpu_s = 0.0          # the child's CPU time for its inferences (all its threads)

    def set_options(self, **options) -> None:
        """Detector.set_options' arguments; sent with the next frame."""
        with self.owner._options_lock:
            self.options.update({k: v for k, v in options.items()
                                 if v is not None and not (k == 'classes' and v == 'keep')})
            self.dirty = True

    def detect(self, frame_bgr: np.ndarray):
        return self.owner._detect(self, frame_bgr)

    def detect_many(self, frames_bgr: Sequence[np.ndarray]) -> List[object]:
        """Several frames or crops in one batched call (small: they go pickled)."""
        return self.owner._detect_many(self, frames_bgr)


# -- the child's side -------------------------------------------------------------------


def _serve(conn: Connection, frame: _Frame) -> None:
    from edge_tracker.core.detector import Detector
    detectors: Dict[int, object] = {}
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return   # the parent closed its end or ended
        op, index, options = request[0], request[1], request[-1]
        if op == 'load':
            try:
                detector = Detector(**request[2])
                if options:
                    detector.set_options(**options)
            except ConfigurationError as exc:
                conn.send(('config-error', str(exc)))
                continue
            except Exception as exc:
                conn.send(('error', f'cannot load the model: {exc!r}'))
                continue
            detectors[index] = detector
            conn.send(('ready', detector.names, detector.backend))
            continue
        try:
            detector = detectors[index]
            if options:
                detector.set_options(**options)
            cpu0 = time.process_time()
            if op == 'detect':
                shape, dtype = request[2], np.dtype(request[3])
                nbytes = int(np.prod(shape)) * dtype.itemsize
                image = np.frombuffer(frame.view(nbytes, grow=False), dtype).reshape(shape)
                result = detector.detect(image)
                del image
            elif op == 'detect_many':
                result = detector.detect_many(request[2])
            else:
                return
            reply = ('ok', result, detector.last_speed_ms, time.process_time() - cpu0)
        except Exception as exc:
            reply = ('error', f'inference failed: {exc!r}')
        try:
            conn.send(reply)
        except (OSError, pickle.PicklingError):
            return


def main(argv: Sequence[str]) -> None:
    sock_fd, frame_fd, parent = (int(v) for v in argv[:3])
    from edge_tracker.core.lifetime import die_with
    die_with(parent)
    from edge_tracker.core.allocator import keep_image_buffers
    keep_image_buffers()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the owner ends this process
    conn = Connection(sock_fd)
    try:
        _serve(conn, _Frame(frame_fd))
    finally:
        # Skip the interpreter's teardown: with torch loaded it takes seconds.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == '__main__':
    main(sys.argv[1:])
