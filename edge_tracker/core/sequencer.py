"""Orders camera frames and detections so tracks come out for every camera frame, in stamp order.

The detector infers only some frames (frame_skip, the motion gate, thermal throttling, or simply
being busy), and with several workers its results arrive out of order. The frames come from
the detector's announcements (in flight, skipped) or from camera_info (`frame`), whichever the
caller listens to; the same stamp from both counts once. Each frame is answered with measured
tracks when its detections arrive, or with predicted tracks as soon as it is clear none will
come: the detector said it skipped the frame, a later frame went in flight (the detector always
takes its newest frame, so one it passed over is never inferred), a later frame's detections
arrived, or the frame waited longer than the detector's usual latency. A frame the detector
said it is inferring (in flight) is not predicted for any of the last three reasons: it waits
for its detections up to max_wait_s.

Frames are ordered by their stamps (the camera's time, or a recording's); the waits are on the
caller's steady clock (`now`), because what is waited for, an inference, takes machine time
whatever the stamps say, and a steady clock never jumps. A stamp more than `rewind_s` before
the last answered frame starts a new timeline (a replay restarted) instead of being ignored.
"""

from collections import deque
from typing import Any, Deque, Dict, List, Optional, Set, Tuple

import numpy as np

MEASURED = 'measured'
PREDICTED = 'predicted'
LATE = 'late'  # detections for a frame already answered by prediction: update, do not publish


class FrameSequencer:
    """Args:
        min_wait_s, max_wait_s: bounds of how long a frame waits for its detections; the wait
            adapts between them to twice the recent detection latency (p90). A frame in
            flight waits max_wait_s.
        max_frames: frames remembered; older ones are answered by prediction.
        rewind_s: a frame or detections this much older than the last answered frame start
            over (everything pending is forgotten); less is a late or reordered message.
    """

    def __init__(self, min_wait_s: float = 0.05, max_wait_s: float = 1.0,
                 max_frames: int = 120, rewind_s: float = 1.0) -> None:
        self.min_wait_s, self.max_wait_s = min_wait_s, max_wait_s
        self.max_frames = max_frames
        self.rewind_s = rewind_s
        self.rewinds = 0
        self._restart()
        self._latency: Deque[float] = deque(maxlen=50)
        self._wait_s = max_wait_s

    def _restart(self) -> None:
        self._frames: Dict[float, float] = {}        # stamp -> local arrival time
        self._detections: Dict[float, Any] = {}      # stamp -> payload
        self._skipped: Deque[float] = deque(maxlen=self.max_frames)
        self._in_flight: Set[float] = set()
        # Frames answered by prediction, newest last: their detections may still come (LATE).
        self._answered: Deque[float] = deque(maxlen=self.max_frames)
        # The newest frame the detector took (in flight) or answered: an older one that is not
        # in flight will never be inferred.
        self._newest_taken = -np.inf
        self._last_emitted = -np.inf

    def _rewound(self, stamp: float) -> None:
        """Starts over when `stamp` is from a new, earlier timeline. A stamp of a frame
        already answered is a late message, however late (a detector slowed to seconds per
        frame answers frames long predicted), not a new timeline."""
        if stamp < self._last_emitted - self.rewind_s and stamp not in self._answered:
            self._restart()
            self.rewinds += 1

    @property
    def wait_s(self) -> float:
        return self._wait_s

    @property
    def waiting(self) -> bool:
        """Frames are held for detections: ready() must be asked again later."""
        return bool(self._frames)

    def next_deadline(self) -> Optional[float]:
        """When ready() would next answer a frame by giving up on its detections (the local
        clock of `now`), or None when no frame waits. Only the oldest frame matters: the
        others are answered after it."""
        if not self._frames:
            return None
        stamp = min(self._frames)
        if stamp in self._detections or stamp in self._skipped:
            return self._frames[stamp]
        wait = self.max_wait_s if stamp in self._in_flight else self.wait_s
        return self._frames[stamp] + wait

    def frame(self, stamp: float, now: float) -> None:
        self._rewound(stamp)
        if stamp <= self._last_emitted or stamp in self._frames:
            return
        self._frames[stamp] = now
        self._trim()

    def _trim(self) -> None:
        while len(self._frames) > self.max_frames:
            oldest = min(self._frames)
            del self._frames[oldest]
            self._detections.pop(oldest, None)
            self._in_flight.discard(oldest)

    def skipped(self, stamp: float, now: float) -> None:
        """The detector will not infer this frame: answer it as soon as its turn comes."""
        self._rewound(stamp)
        if stamp > self._last_emitted:
            self._skipped.append(stamp)
            self.frame(stamp, now)

    def in_flight(self, stamp: float, now: float) -> None:
        """The detector is inferring this frame: its detections will come, possibly after
        newer frames' (several workers finish out of order), so it waits for them."""
        self._rewound(stamp)
        if stamp > self._last_emitted and stamp not in self._detections:
            self._in_flight.add(stamp)
            self._newest_taken = max(self._newest_taken, stamp)
            self.frame(stamp, now)

    def detections(self, stamp: float, payload: Any, now: float) -> Optional[Tuple]:
        """Registers detections; returns (LATE, stamp, payload) when their frame was already
        answered by prediction (the caller updates its tracker without publishing)."""
        self._rewound(stamp)
        arrived = self._frames.get(stamp)
        if arrived is not None:
            self._latency.append(now - arrived)
            # Here, not in ready(): ready() runs for every event and timer tick. (A sort of
            # 50 floats: np.percentile costs ~35 us, a noticeable part of a frame's work.)
            ranked = sorted(self._latency)
            p90 = ranked[min(len(ranked) - 1, int(0.9 * len(ranked)))]
            self._wait_s = min(self.max_wait_s, max(self.min_wait_s, 2.0 * p90))
        if stamp <= self._last_emitted:
            return (LATE, stamp, payload) if stamp in self._answered else None
        self._newest_taken = max(self._newest_taken, stamp)
        self._detections[stamp] = payload
        if arrived is None:
            self._frames[stamp] = now  # no camera_info for it (yet): the detections define it
            self._trim()
        return None

    def ready(self, now: float) -> List[Tuple[str, float, Any]]:
        """Frames that can be answered now, oldest first: (MEASURED|PREDICTED, stamp, payload)."""
        out = []
        wait = self.wait_s
        for stamp in sorted(self._frames):
            waited = now - self._frames[stamp]
            if stamp in self._detections:
                out.append((MEASURED, stamp, self._detections.pop(stamp)))
            elif stamp in self._in_flight and waited <= self.max_wait_s \
                    and stamp not in self._skipped:   # (skipped after all: inference failed)
                break
            elif stamp in self._in_flight or stamp in self._skipped \
                    or stamp < self._newest_taken or waited > wait:
                out.append((PREDICTED, stamp, None))
                self._answered.append(stamp)
            else:
                break
            del self._frames[stamp]
            self._in_flight.discard(stamp)
            self._last_emitted = stamp
        return out
