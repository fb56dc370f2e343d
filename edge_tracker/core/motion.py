"""A cheap motion check before the expensive network: frame difference on a small grey image."""

from typing import Optional

import cv2
import numpy as np


class MotionGate:
    """Says whether a frame changed enough since the last frame that passed to be worth inference.

    Args:
        width: the frame is shrunk to this width first (cost and noise both drop with it).
        pixel_threshold: grey-level change that counts a pixel as changed; above sensor noise.
        min_changed_fraction: share of changed pixels that means motion; lower reacts to
            smaller or farther objects, higher ignores more flicker.
        refresh_s: a frame passes at least this often even without motion, so static objects
            are re-detected and tracks do not expire (0 disables).
    """

    def __init__(self, width: int = 160, pixel_threshold: int = 25,
                 min_changed_fraction: float = 0.002, refresh_s: float = 2.0) -> None:
        self.width = int(width)
        self.pixel_threshold = int(pixel_threshold)
        self.min_changed_fraction = float(min_changed_fraction)
        self.refresh_s = float(refresh_s)
        self._reference: Optional[np.ndarray] = None
        self._small: Optional[np.ndarray] = None
        self._grey: Optional[np.ndarray] = None
        self._diff: Optional[np.ndarray] = None
        self._last_pass = -np.inf
        self.last_fraction = 0.0
        self.passed = 0
        self.blocked = 0

    def _shrink(self, frame_bgr: np.ndarray) -> np.ndarray:
        h, w = frame_bgr.shape[:2]
        size = (self.width, max(1, round(h * self.width / w)))
        if self._small is None or self._small.shape[:2] != (size[1], size[0]):
            self._small = np.empty((size[1], size[0], 3), np.uint8)
            self._grey = np.empty((size[1], size[0]), np.uint8)
            self._diff = np.empty_like(self._grey)
            self._reference = None
        cv2.resize(frame_bgr, size, dst=self._small, interpolation=cv2.INTER_AREA)
        cv2.cvtColor(self._small, cv2.COLOR_BGR2GRAY, dst=self._grey)
        cv2.GaussianBlur(self._grey, (5, 5), 0, dst=self._grey)
        return self._grey

    def check(self, frame_bgr: np.ndarray, now: float) -> bool:
        """True if the frame should be inferred; it then becomes the new reference."""
        grey = self._shrink(frame_bgr)
        if self._reference is None:
            moved = True
        else:
            cv2.absdiff(grey, self._reference, dst=self._diff)
            cv2.threshold(self._diff, self.pixel_threshold, 255, cv2.THRESH_BINARY,
                          dst=self._diff)
            self.last_fraction = cv2.countNonZero(self._diff) / self._diff.size
            moved = self.last_fraction >= self.min_changed_fraction
        if not moved and self.refresh_s > 0 and now - self._last_pass >= self.refresh_s:
            moved = True
        if moved:
            if self._reference is None:
                self._reference = grey.copy()
            else:
                np.copyto(self._reference, grey)
            self._last_pass = now
            self.passed += 1
        else:
            self.blocked += 1
        return moved

    def reset(self) -> None:
        self._reference = None
        self._last_pass = -np.inf
