"""Persistent ids for detections: the project's batched ByteTrack behind an sv.Detections API,
fed with detection stamps so that its clock runs on real durations."""

import math
from typing import Optional

import numpy as np
import supervision as sv

from edge_tracker.core.bytetrack import ByteTrack

# The defaults of the tracker, the node and the profiles (config/*.yaml say the same). Chosen on
# the synthetic scene seeds 11-26 and the MOT17 sequences 02, 04 and 09 (`edge_eval mot`; also
# with a simulated moving camera and at 10 fps, README); never on the default scene or the
# other sequences, which are reported.
TRACKER_DEFAULTS = dict(track_activation_threshold=0.5, high_conf_det_threshold=0.5,
                        minimum_iou_threshold=0.25, lost_track_buffer=60,
                        minimum_consecutive_frames=1, frame_rate=30.0, class_aware=False)

# Pixel coordinates beyond this are garbage; they would overflow the Kalman filter's products.
_MAX_COORDINATE = 1e6
# A stamp this much (or the lost-track duration, if longer) older than the last one is not a
# reordered message but a new timeline: a recording replayed again, a simulation restarted.
MIN_REWIND_S = 1.0


class Tracker:
    """Persistent ids for detections; one id sequence per instance.

    Args:
        track_activation_threshold: minimum score to start a track. Above the detector's `conf`
            so that low-score boxes only extend tracks (ByteTrack's second association).
            Raising it cuts false tracks and delays new ones.
        high_conf_det_threshold: boxes at or above it take part in the first association.
        minimum_iou_threshold: overlap needed to match a box to a track; lower tolerates faster
            motion or skipped frames, higher avoids swaps between neighbours.
        lost_track_buffer: how long a missed track may still continue, in frames at 30 fps
            (the ByteTrack paper's convention): a track continues after up to
            round(lost_track_buffer x frame_rate / 30) consecutive inferred frames (update
            calls) without a match, so with every frame inferred the buffer lasts
            lost_track_buffer / 30 seconds at any frame rate; that duration also bounds how
            far `predict` extrapolates. Longer bridges occlusions, shorter frees ids of
            objects that left. Frames the detector skipped (frame skip, motion gate, thermal
            pause, a busy detector) do not count: they are no evidence that an object left.
        minimum_consecutive_frames: matches before a track gets an id; 1 gives ids at once,
            higher suppresses one-frame false positives.
        frame_rate: nominal rate of the detections: the first step, the noise per frame and
            how many inferred frames the lost-track buffer counts.
        class_aware: a box only continues a track of its own class, so objects of different
            classes that cross never swap ids; off for detectors whose class flickers.
    """

    def __init__(self, track_activation_threshold: float = TRACKER_DEFAULTS[
                     'track_activation_threshold'],
                 high_conf_det_threshold: float = TRACKER_DEFAULTS['high_conf_det_threshold'],
                 minimum_iou_threshold: float = TRACKER_DEFAULTS['minimum_iou_threshold'],
                 lost_track_buffer: int = TRACKER_DEFAULTS['lost_track_buffer'],
                 minimum_consecutive_frames: int = TRACKER_DEFAULTS[
                     'minimum_consecutive_frames'],
                 frame_rate: float = TRACKER_DEFAULTS['frame_rate'],
                 class_aware: bool = TRACKER_DEFAULTS['class_aware']) -> None:
        self.options = dict(track_activation_threshold=track_activation_threshold,
                            high_conf_det_threshold=high_conf_det_threshold,
                            minimum_iou_threshold=minimum_iou_threshold,
                            lost_track_buffer=lost_track_buffer,
                            minimum_consecutive_frames=minimum_consecutive_frames,
                            frame_rate=frame_rate, class_aware=class_aware)
        self._tracker = ByteTrack(**self._algorithm_options())
        self.out_of_order = 0  # detections older than the newest seen, not tracked
        self.rewinds = 0       # jumps back in time that restarted the tracks
        self.reset()

    def _algorithm_options(self) -> dict:
        o = dict(self.options)
        o['lost_track_frames'] = o.pop('lost_track_buffer')
        return o

    def reconfigure(self, **options) -> None:
        """New thresholds; existing tracks and ids are kept."""
        self.options.update(options)
        self._tracker.configure(**self._algorithm_options())

    @property
    def rewind_s(self) -> float:
        """How far back a stamp must jump to restart the tracks rather than be dropped."""
        return max(MIN_REWIND_S, self._tracker.max_step)

    def reset(self) -> None:
        """Forgets every track; ids start at 0 again."""
        self._tracker.reset()
        self._last_stamp: Optional[float] = None
        self._last_output = _empty()
        self._last_rows = np.empty(0, dtype=np.int64)

    @property
    def last_stamp(self) -> Optional[float]:
        """Stamp of the last update: when the boxes of the last output were measured."""
        return self._last_stamp

    @property
    def live_tracks(self) -> int:
        """Tracks held, including unconfirmed ones and those lost but within the buffer."""
        return len(self._tracker)

    def predict(self, stamp: float) -> sv.Detections:
        """The tracks of the last update, moved by their motion model to `stamp`, for frames
        the detector did not run on. Nothing is changed; nothing is returned once `stamp` is
        past the lost-track duration or before the last update."""
        last = self._last_output
        if len(last) == 0 or self._last_stamp is None or not math.isfinite(stamp):
            return _empty()
        since = stamp - self._last_stamp
        if since < 0 or since > self._tracker.max_step:
            return _empty()
        out = last[np.arange(len(last))]
        out.xyxy = self._tracker.extrapolate(self._last_rows, since)
        return out

    def update(self, detections: sv.Detections, stamp: Optional[float] = None) -> sv.Detections:
        """Tracks for the detections of the frame taken at `stamp` (seconds).

        Returns only boxes with an id. A stamp slightly older than the previous one (a
        reordered message) is not tracked and gives no boxes; one more than `rewind_s` older
        starts a new timeline (a replay restarted): every track is forgotten, ids start at 0,
        and this frame is tracked. A duplicate stamp is matched without advancing the motion
        model.
        """
        detections = sanitize(detections)
        if stamp is not None and not math.isfinite(stamp):
            stamp = None
        if stamp is not None and self._last_stamp is not None and stamp < self._last_stamp:
            if self._last_stamp - stamp <= self.rewind_s:
                self.out_of_order += 1
                return _empty()
            self.reset()
            self.rewinds += 1
        if stamp is not None:
            self._last_stamp = stamp
        xyxy = np.asarray(detections.xyxy, dtype=np.float64).reshape(-1, 4)
        scores = np.ones(len(xyxy)) if detections.confidence is None \
            else np.asarray(detections.confidence, dtype=np.float64)
        classes = np.zeros(len(xyxy), dtype=np.int64) if detections.class_id is None \
            else np.asarray(detections.class_id, dtype=np.int64)
        dets, ids, rows = self._tracker.update(xyxy, scores, classes, stamp)
        if len(dets) == 0:
            self._last_output = _empty()
            self._last_rows = np.empty(0, dtype=np.int64)
        else:
            self._last_output = detections[dets]
            self._last_output.tracker_id = ids
            self._last_rows = rows
        return self._last_output


def _empty() -> sv.Detections:
    out = sv.Detections.empty()
    out.tracker_id = np.array([], dtype=int)
    return out


def sanitize(detections: sv.Detections) -> sv.Detections:
    """Drops boxes the tracker must never see: non-finite or absurd values, empty sizes."""
    if len(detections) == 0:
        return detections
    xyxy = np.asarray(detections.xyxy, dtype=np.float64)
    ok = np.isfinite(xyxy).all(axis=1) & (np.abs(xyxy) < _MAX_COORDINATE).all(axis=1) \
        & (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    if detections.confidence is not None:
        ok &= np.isfinite(np.asarray(detections.confidence, dtype=np.float64))
    return detections if ok.all() else detections[ok]
