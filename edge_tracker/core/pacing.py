"""Lossless replay: a producer hands over its next item only once the previous one has been
answered, so nothing downstream is ever dropped for being busy, whatever the machine's load."""

import threading
from typing import Hashable, Optional


class AnswerPacer:
    """`wait()` before sending an item, `sent(key)` after it, `answered(key)` when the answer
    to it comes back (from another thread). An answer that never comes releases `wait()` after
    `timeout_s` (counted in `timeouts`): a lost message must not stall the replay forever."""

    def __init__(self, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self._cond = threading.Condition()
        self._waiting: Optional[Hashable] = None
        self._closed = False
        self.timeouts = 0
        self.answered_count = 0

    def sent(self, key: Hashable) -> None:
        with self._cond:
            self._waiting = key

    def answered(self, key: Hashable) -> None:
        with self._cond:
            if self._waiting is not None and key == self._waiting:
                self._waiting = None
                self.answered_count += 1
                self._cond.notify_all()

    def wait(self) -> bool:
        """Blocks until the last item sent was answered; False on a timeout or close()."""
        with self._cond:
            if self._waiting is None:
                return True
            self._cond.wait_for(lambda: self._waiting is None or self._closed, self.timeout_s)
            if self._waiting is None:
                return True
            if not self._closed:
                self.timeouts += 1
            self._waiting = None
            return False

    def close(self) -> None:
        """Releases a waiting producer (shutting down)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
