"""Boxes, class, id and a short trail drawn with supervision annotators (for RViz and videos)."""

from typing import List, Optional

import numpy as np
import supervision as sv


class Annotator:
    """Draws tracks on a copy of the frame kept in one reused buffer.

    Args:
        trail_length: how many past positions each trail shows; 0 disables trails.
    """

    def __init__(self, trail_length: int = 30) -> None:
        self.trail_length = int(trail_length)
        lookup = sv.ColorLookup.TRACK
        self._box = sv.BoxAnnotator(thickness=2, color_lookup=lookup)
        self._label = sv.LabelAnnotator(text_scale=0.5, text_padding=4, color_lookup=lookup)
        self._buf: Optional[np.ndarray] = None
        self.reset()

    def reset(self) -> None:
        """Forgets the trails (they are keyed by track id, and ids restart after a reset)."""
        self._trace = sv.TraceAnnotator(trace_length=max(1, self.trail_length), thickness=2,
                                        position=sv.Position.CENTER,
                                        color_lookup=sv.ColorLookup.TRACK)

    def draw(self, frame_bgr: np.ndarray, tracks: sv.Detections) -> np.ndarray:
        if self._buf is None or self._buf.shape != frame_bgr.shape:
            self._buf = np.empty_like(frame_bgr)
        np.copyto(self._buf, frame_bgr)
        canvas = self._buf
        if tracks.tracker_id is None or len(tracks) == 0:
            return canvas
        if self.trail_length > 0:
            canvas = self._trace.annotate(canvas, tracks)
        canvas = self._box.annotate(canvas, tracks)
        return self._label.annotate(canvas, tracks, labels=labels(tracks))


def labels(tracks: sv.Detections) -> List[str]:
    names = tracks.data.get('class_name') if tracks.data else None
    out = []
    for i in range(len(tracks)):
        name = str(names[i]) if names is not None else str(tracks.class_id[i]) \
            if tracks.class_id is not None else ''
        out.append(f'#{int(tracks.tracker_id[i])} {name}'.strip())
    return out
