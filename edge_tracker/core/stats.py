"""Rates and timing figures reported in /diagnostics."""

import threading
import time
from collections import deque
from typing import Deque, Dict, Optional

import numpy as np


class RateMeter:
    """Events per second over a sliding time window."""

    def __init__(self, window_s: float = 2.0) -> None:
        self._window = window_s
        self._times: Deque[float] = deque()
        self._lock = threading.Lock()
        self.count = 0

    def tick(self, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self.count += 1
            self._trim(now)

    def rate(self, now: Optional[float] = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = now - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()


class DurationStats:
    """Mean, p50 and p95 of the last `size` durations (seconds in, milliseconds out)."""

    def __init__(self, size: int = 200) -> None:
        self._values: Deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values.append(seconds)

    def summary_ms(self) -> Dict[str, float]:
        with self._lock:
            values = np.fromiter(self._values, dtype=np.float64)
        if values.size == 0:
            return {'mean_ms': 0.0, 'p50_ms': 0.0, 'p95_ms': 0.0}
        p50, p95 = np.percentile(values, [50, 95])
        return {'mean_ms': float(values.mean() * 1e3), 'p50_ms': float(p50 * 1e3),
                'p95_ms': float(p95 * 1e3)}


def rss_kb(pid='self') -> Optional[int]:
    """Resident memory of a process in kB (None once it is gone, or without /proc)."""
    try:
        with open(f'/proc/{pid}/status', encoding='ascii') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def process_rss_mb() -> float:
    """Resident memory of this process in MB (0 where /proc is not available)."""
    return (rss_kb() or 0) / 1024.0


# Health levels, numbered as diagnostic_msgs/DiagnosticStatus numbers them.
OK, WARN, ERROR, STALE = 0, 1, 2, 3
