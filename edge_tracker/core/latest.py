"""Newest-wins hand-off between a producer (a subscription callback) and one worker thread."""

import threading
from typing import Callable, Generic, Optional, TypeVar

T = TypeVar('T')


class LatestWorker(Generic[T]):
    """Runs `work(item)` on a thread of its own, always on the newest submitted item.

    While `work` runs, a newly submitted item replaces the one waiting (which is counted in
    `dropped`) instead of queueing behind it, so the output never lags behind a backlog.
    Exceptions from `work` go to `on_error` and the worker keeps serving.
    """

    def __init__(self, work: Callable[[T], None], name: str = 'latest-worker',
                 on_error: Optional[Callable[[BaseException], None]] = None,
                 on_drop: Optional[Callable[[T], None]] = None,
                 init: Optional[Callable[[], None]] = None) -> None:
        """`init` runs first, on the worker's own thread (see wait_ready())."""
        self._work = work
        self._init = init
        self._ready = threading.Event()
        self._init_error: Optional[BaseException] = None
        self._on_error = on_error
        self._on_drop = on_drop
        self._cond = threading.Condition()
        self._pending: Optional[T] = None
        self._has_pending = False
        self._stopping = False
        self.busy = False
        self.dropped = 0
        self.processed = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def wait_ready(self) -> None:
        """Blocks until `init` has run; re-raises its exception in the caller."""
        self._ready.wait()
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
        """Asks the thread to finish after its current item; True if it ended in time."""
        with self._cond:
            self._stopping = True
            self._pending = None
            self._has_pending = False
            self._cond.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            if self._init is not None:
                self._init()
        except BaseException as exc:  # handed to wait_ready(); this worker never serves
            self._init_error = exc
            return
        finally:
            self._ready.set()
        while True:
            with self._cond:
                while not self._has_pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                item = self._pending
                self._pending = None
                self._has_pending = False
                self.busy = True
            try:
                self._work(item)
                self.processed += 1
            except Exception as exc:  # keep serving; the owner decides how loud to be
                if self._on_error is not None:
                    self._on_error(exc)
            finally:
                self.busy = False
