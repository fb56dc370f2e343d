"""Newest-wins hand-off between a producer (a subscription callback) and a pool of worker
threads, and how many workers and threads inference gets by default."""

import math
import os
import threading
import time
from typing import Callable, Generic, List, Optional, Tuple, TypeVar

T = TypeVar('T')

# Backends that run on one accelerator: a second model instance only queues behind the first.
ACCELERATOR_FORMATS = ('engine', 'edgetpu')
# Past this many model instances the extra cores go to threads inside a frame (see below).
MAX_AUTO_WORKERS = 4


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. under taskset or a container)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def is_accelerated(backend: str, device: str = 'cpu') -> bool:
    """True when inference runs on an accelerator (a TensorRT engine, an Edge TPU model, or a
    torch device other than the CPU), not on the CPU cores."""
    device = str(device).strip().lower()
    return backend in ACCELERATOR_FORMATS or device not in ('', 'cpu')


def choose_workers(cores: int, backend: str, device: str = 'cpu', workers: int = 0,
                   threads: int = 0) -> Tuple[int, int]:
    """(workers, threads per worker) for inference; 0 for either means automatic.

    The rule: on an accelerator, 1 worker (it runs one frame at a time; a second instance
    would only wait for it) with cores - 1 host threads for pre- and post-processing, leaving
    a core to the camera and tracker. On CPU backends workers x threads fills the cores: a
    small network parallelises poorly inside one frame and almost perfectly across frames
    (two 1-thread models on alternate frames did 46.6 frames/s where one 2-thread model did
    31.0 on the same 2 cores), so each worker gets one thread up to 4 workers; beyond that
    every further model instance costs its memory and holds one more frame on a slow single
    thread, so the threads grow instead: threads = ceil(cores / 4), workers = cores // threads.
    1, 2, 4, 8, 16 cores -> 1x1, 2x1, 4x1, 4x2, 4x4. A value given for one of the two is kept
    and the other fills the cores around it.

    On CPU backends the threads never exceed the cores: workers x threads is capped at the
    cores by lowering the threads (a profile written for a bigger board, run on a smaller
    one). Each layer of a frame ends at a barrier of its worker's threads, and a thread without
    a core of its own holds the others there: on 2 cores two 2-thread PyTorch processes
    inferred 12 frames in 8 s where two 1-thread ones did 734 (tools/thread_contention.py).
    """
    cores = max(1, int(cores))
    if workers < 0 or threads < 0:
        raise ValueError('workers and threads must be 0 (automatic) or positive')
    if is_accelerated(backend, device):
        return (workers or 1), (threads or max(1, cores - 1))
    if workers:
        return workers, max(1, min(threads or cores, cores // workers))
    if threads:
        threads = min(threads, cores)
        return max(1, cores // threads), threads
    threads = math.ceil(cores / MAX_AUTO_WORKERS)
    return max(1, cores // threads), threads


ISOLATION_CHOICES = ('auto', 'thread', 'process')


def use_processes(isolation: str, workers: int, backend: str, device: str = 'cpu') -> bool:
    """Whether each worker's model runs in a process of its own (core/inference_process.py).

    auto: yes for several workers on the CPU, where in-process workers wait for the
    interpreter lock (in the node two took 52 ms per frame against 35.5 ms alone); no for one
    worker (nothing to contend with but the executor, and a process costs a model's memory)
    and on an accelerator (one device, opened by one process: CUDA contexts and the Edge TPU
    are not shared well)."""
    if isolation not in ISOLATION_CHOICES:
        raise ValueError(f'isolation must be one of {", ".join(ISOLATION_CHOICES)}')
    if isolation != 'auto':
        return isolation == 'process'
    return workers > 1 and not is_accelerated(backend, device)


class LatestPool(Generic[T]):
    """Runs `work(index, item)` on `workers` threads of their own, always on the newest item.

    One item waits at most: an idle worker takes it at once; while every worker is busy a newly
    submitted item replaces the waiting one (which goes to `on_drop` and is counted in
    `dropped`) instead of queueing behind it, so the output never lags behind a backlog.
    With several workers, items finish out of order. Exceptions from `work` go to
    `on_error(exc, item)` and the worker keeps serving.

    `on_take(index, item)` runs on the worker that took `item`, before `work`, under the pool's
    lock (keep it short: submit() waits for it), so the calls come in the order the items were
    taken (the newest each time: submission order) and an announcement made there never
    overtakes an earlier one. An item taken after others were dropped tells that those will
    never be worked on.

    `init(index)` runs first on each worker's own thread (models must be set up on the thread
    that runs them), one worker after the other (no two model loads race); see wait_ready().
    """

    def __init__(self, work: Callable[[int, T], None], workers: int = 1,
                 name: str = 'latest-worker',
                 on_error: Optional[Callable[[BaseException, T], None]] = None,
                 on_drop: Optional[Callable[[T], None]] = None,
                 on_take: Optional[Callable[[int, T], None]] = None,
                 init: Optional[Callable[[int], None]] = None) -> None:
        if workers < 1:
            raise ValueError('a pool needs at least one worker')
        self._work = work
        self._init = init
        self._on_error = on_error
        self._on_drop = on_drop
        self._on_take = on_take
        self._ready = [threading.Event() for _ in range(workers)]
        self._init_error: Optional[BaseException] = None
        self._cond = threading.Condition()
        self._pending: Optional[T] = None
        self._has_pending = False
        self._stopping = False
        self.workers = workers
        self.dropped = 0
        self.busy: List[bool] = [False] * workers
        self.done: List[int] = [0] * workers         # items finished, per worker
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True,
                                          name=f'{name}-{i}' if workers > 1 else name)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    @property
    def processed(self) -> int:
        return sum(self.done)

    def wait_ready(self) -> None:
        """Blocks until every worker's `init` has run; re-raises the first one's exception."""
        for event in self._ready:
            event.wait()
        if self._init_error is not None:
            raise self._init_error

    def submit(self, item: T) -> None:
        """Hands `item` over; a waiting one it replaces goes to `on_drop`."""
        with self._cond:
            replaced = self._pending if self._has_pending else None
            if self._has_pending:
                self.dropped += 1
            self._pending = item
            self._has_pending = True
            self._cond.notify()
        if replaced is not None and self._on_drop is not None:
            self._on_drop(replaced)

    def stop(self, timeout: float = 2.0) -> bool:
        """Asks the threads to finish after their current item; True if all ended in time.
        The waiting item (if any) is given up."""
        with self._cond:
            self._stopping = True
            self._pending = None
            self._has_pending = False
            self._cond.notify_all()
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def _run(self, index: int) -> None:
        try:
            if index > 0:
                self._ready[index - 1].wait()
            if self._init is not None and self._init_error is None:
                self._init(index)
        except BaseException as exc:  # handed to wait_ready(); this pool never serves
            self._init_error = exc
            return
        finally:
            self._ready[index].set()
        if self._init_error is not None:
            return
        while True:
            try:
                with self._cond:
                    while not self._has_pending and not self._stopping:
                        self._cond.wait()
                    if self._stopping:
                        return
                    item = self._pending
                    self._pending = None
                    self._has_pending = False
                    self.busy[index] = True
                    if self._on_take is not None:  # under the lock: in take order
                        self._on_take(index, item)
                self._work(index, item)
                self.done[index] += 1
            except Exception as exc:  # keep serving; the owner decides how loud to be
                if self._on_error is not None:
                    self._on_error(exc, item)
            finally:
                self.busy[index] = False


class InFlight:
    """The frames a detector's workers are inferring, so that a tracker hears of one only when
    it must (detections/in_flight): before anything about a newer frame goes out (its
    detections, or a notice that it is skipped) while the older one is still being inferred;
    the tracker then holds the newer frame's tracks back for it. A frame that finishes before
    anything newer is published needs no announcement: its detections are the first the
    tracker hears of it. With a detector that keeps up with the camera that is every frame,
    one message fewer per frame for both nodes.

    `key`s order as the frames' stamps. Thread-safe: `send` announces and sends under the
    lock that guards the frames, so no other thread's message for a newer frame slips in
    between."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames = {}   # key -> [item, announced]
        self.announced = 0

    def taken(self, key, item) -> None:
        """A worker started on this frame."""
        with self._lock:
            self._frames[key] = [item, False]

    def send(self, key, announce: Callable[[object], None], send: Callable[[], None]) -> None:
        """Frame `key`'s detections, or the notice that none will come, go out by `send`;
        first `announce(item)` for each older frame still in flight not announced yet,
        oldest first."""
        with self._lock:
            self._frames.pop(key, None)
            due = sorted((k, entry) for k, entry in self._frames.items()
                         if k < key and not entry[1])
            for _, entry in due:
                entry[1] = True
                announce(entry[0])
            self.announced += len(due)
            send()

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)
