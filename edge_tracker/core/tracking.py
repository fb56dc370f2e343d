"""ByteTrack (roboflow `trackers`) fed with detection stamps, so its clocks are real durations."""

import copy
import math
from typing import Optional

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

# Pixel coordinates beyond this are garbage; they would overflow the Kalman filter's products.
_MAX_COORDINATE = 1e6
# trackers counts its lost-track buffer in frames of a 30 FPS stream.
_TRACKERS_REFERENCE_FPS = 30.0


class Tracker:
    """Persistent ids for detections; one id sequence per instance.

    Args:
        track_activation_threshold: minimum score to start a track. Above the detector's `conf`
            so that low-score boxes only extend tracks (ByteTrack's second association).
            Raising it cuts false tracks and delays new ones.
        high_conf_det_threshold: boxes at or above it take part in the first association.
        minimum_iou_threshold: overlap needed to match a box to a track; lower tolerates faster
            motion or skipped frames, higher avoids swaps between neighbours.
        lost_track_buffer: how long (in frames at `frame_rate`) a track survives unseen; longer
            bridges occlusions, shorter frees ids of objects that left.
        minimum_consecutive_frames: matches before a track gets an id; 1 gives ids at once,
            higher suppresses one-frame false positives.
        frame_rate: nominal rate of the detections, for the first step and the buffer.
    """

    def __init__(self, track_activation_threshold: float = 0.5,
                 high_conf_det_threshold: float = 0.5, minimum_iou_threshold: float = 0.1,
                 lost_track_buffer: int = 30, minimum_consecutive_frames: int = 2,
                 frame_rate: float = 30.0) -> None:
        self.options = dict(track_activation_threshold=track_activation_threshold,
                            high_conf_det_threshold=high_conf_det_threshold,
                            minimum_iou_threshold=minimum_iou_threshold,
                            lost_track_buffer=lost_track_buffer,
                            minimum_consecutive_frames=minimum_consecutive_frames,
                            frame_rate=frame_rate)
        self._tracker = self._make()
        self._last_stamp: Optional[float] = None
        self.out_of_order = 0  # detections older than the newest seen, not tracked
        self._last_output = _empty()

    def _make(self) -> ByteTrackTracker:
        o = self.options
        seconds = o['lost_track_buffer'] / o['frame_rate']
        return ByteTrackTracker(
            lost_track_buffer=max(0, int(round(seconds * _TRACKERS_REFERENCE_FPS))),
            frame_rate=o['frame_rate'],
            track_activation_threshold=o['track_activation_threshold'],
            minimum_consecutive_frames=o['minimum_consecutive_frames'],
            minimum_iou_threshold=o['minimum_iou_threshold'],
            high_conf_det_threshold=o['high_conf_det_threshold'])

    def reconfigure(self, **options) -> None:
        """New thresholds; existing tracks and ids are kept."""
        self.options.update(options)
        fresh = self._make()
        fresh.tracks = self._tracker.tracks
        fresh._next_track_id = getattr(self._tracker, '_next_track_id', 0)
        fresh._last_timestamp = getattr(self._tracker, '_last_timestamp', None)
        self._tracker = fresh

    def reset(self) -> None:
        self._tracker.reset()
        self._last_stamp = None
        self._last_output = _empty()

    @property
    def last_stamp(self) -> Optional[float]:
        """Stamp of the last update: when the boxes of the last output were measured."""
        return self._last_stamp

    def predict(self, stamp: float) -> sv.Detections:
        """The tracks of the last update, moved by their motion model to `stamp`, for frames
        the detector did not run on. Nothing is changed; nothing is returned once `stamp` is
        past the lost-track duration or before the last update."""
        last, since = self._last_output, None
        if self._last_stamp is not None and math.isfinite(stamp):
            since = stamp - self._last_stamp
        o = self.options
        if len(last) == 0 or since is None or since < 0 \
                or since > o['lost_track_buffer'] / o['frame_rate']:
            return _empty()
        by_id = {t.tracker_id: t for t in self._tracker.tracks if t.tracker_id >= 0}
        keep, boxes = [], []
        for i, track_id in enumerate(last.tracker_id):
            track = by_id.get(int(track_id))
            if track is None:
                continue
            estimator = copy.deepcopy(track.state_estimator)
            if since > 0:
                estimator.predict(since * o['frame_rate'], o['frame_rate'])
            keep.append(i)
            boxes.append(estimator.state_to_bbox())
        if not keep:
            return _empty()
        out = last[np.array(keep)]
        out.xyxy = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        return out

    def update(self, detections: sv.Detections, stamp: Optional[float] = None) -> sv.Detections:
        """Tracks for the detections of the frame taken at `stamp` (seconds).

        Returns only boxes with an id. A stamp older than the previous one (a reordered or
        replayed message) is not tracked and gives no boxes; a duplicate stamp is matched
        without advancing the motion model.
        """
        detections = sanitize(detections)
        if stamp is not None and not math.isfinite(stamp):
            stamp = None
        if stamp is not None and self._last_stamp is not None and stamp < self._last_stamp:
            self.out_of_order += 1
            return _empty()
        if stamp is not None:
            self._last_stamp = stamp
        tracked = self._tracker.update(detections, timestamp=stamp)
        if tracked.tracker_id is None or len(tracked) == 0:
            self._last_output = _empty()
        else:
            self._last_output = tracked[tracked.tracker_id >= 0]
        return self._last_output

    @property
    def tracks(self):
        return self._tracker.tracks


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
