"""ByteTrack (Zhang et al., ECCV 2022) with every track's Kalman filter held in shared arrays.

`trackers.ByteTrackTracker` keeps one Python filter object per track; here predict and update
run as a handful of batched numpy operations over all tracks (`edge_bench`). The association
follows the paper: predict every track, match confirmed tracks to high-score boxes, then the
still unmatched tracks that were seen on the previous inferred frame to low-score boxes, then
unconfirmed tracks to the remaining high-score boxes; start tracks from unmatched strong boxes.
The filter's state is the box centre and size (x, y, w, h) with their velocities, its noise
proportional to the box width and height. From later trackers' descriptions, kept where they
helped on the sequences and scenes the defaults were chosen on (`edge_eval mot`, README):
boxes below a score floor take no part; the second association and unconfirmed tracks have
overlaps of their own; tracks that plain IoU cannot continue are tried once more with both
boxes grown on every side (buffered IoU, after C-BIoU: fast or small boxes, skipped frames); a
lost track's velocity decays; a lost track that overlaps a matched one almost entirely is a
duplicate and is dropped (after ByteTrack's removal of tracked/lost duplicates).
Shared motion (the project's, for moving cameras without images): when a camera pans or
shakes, every box moves by the same amount on top of its own motion. After the first
association, the median offset between the matched boxes and their predictions estimates that
common part; where it is significant (the median beyond twice its standard error, from the
residuals' spread) every track not matched yet is moved by it before the later associations,
so lost and unconfirmed tracks follow the image instead of staying where the camera left them.
With a still camera the offsets are independent and the median stays within its error: nothing
moves.
Tried and left out because they lost IDF1 there: score-weighted similarity, OC-SORT's
observation-centric re-update and recovery, buffering in the first association itself, noise
scaled by the box height alone (DeepSORT's, for pedestrians; it lost on the synthetic default
scene), noise per second instead of per nominal frame, ids only after two matches (also with
tentative tracks surviving a miss), buffered IoU for recently seen tracks only, and a shared
velocity or zoom besides the shared offset (they lost on the default scene); on copies seen
from a camera moving forward (`edge_eval mot --simulate`) also C-BIoU's second, larger buffer
(0.5), two matches before an id, a tentative state (the id from the first box, its boxes
out after two or three matches: IDF1 and MOTA lower), other overlaps, buffers, noise, decays.
The clock is in seconds, so irregular frame intervals extrapolate correctly; a track's lost
time counts inferred frames (calls of update), never time: frames the detector did not look
at are no evidence that an object left. The buffer is given in frames at 30 fps, as in the
ByteTrack paper, and scaled to the nominal frame rate, so it lasts the same time at any rate.
"""

from typing import Optional, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

# Noise relative to box size (per nominal frame): how far a box may wander and how fast its
# velocity may change. The values are those of the ByteTrack/DeepSORT papers' filters.
_STD_POSITION = 1.0 / 20.0
_STD_VELOCITY = 1.0 / 160.0
_MIN_SIZE = 1.0  # pixels; keeps the noise of degenerate boxes positive
# The paper's overlap for the second association: a low-score box is only trusted to continue
# a track it clearly overlaps. Boxes below _LOW_SCORE_FLOOR are noise even for that.
_LOW_SCORE_MIN_IOU = 0.5
_LOW_SCORE_FLOOR = 0.1
# An unconfirmed track (one or a few matches) only continues on a clear overlap: a false
# positive's leftover must not capture a box.
_UNCONFIRMED_MIN_IOU = 0.3
# Velocity of a lost track decays (per nominal frame lost), so a prediction made through an
# occlusion does not run away from where the object reappears.
_LOST_VELOCITY_DECAY = 0.98
# Without class_aware, a box of another class continues a track only with this share of its
# overlap: a same-class box of similar overlap wins (objects of two classes that cross, or meet
# again after a pause, keep their ids), while a class that flickers on one object (car/truck)
# still continues its track when the overlap is clear. class_aware makes it 0.
CLASS_MISMATCH_FACTOR = 0.3
# Buffered IoU's margin (C-BIoU): a fraction of the box size added on every side.
_BUFFER = 0.3
# Shared motion: the fewest first-association matches to estimate it from, and how many
# standard errors of the median it must exceed to count as camera motion rather than noise.
_SHARED_MIN_MATCHES = 3
_SHARED_SIGNIFICANCE = 2.0
# The standard error of a median is ~1.253 sigma / sqrt(n); sigma ~1.4826 x the median
# absolute deviation (a robust spread: the boxes that move on their own do not inflate it).
_MEDIAN_SE = 1.253 * 1.4826
# lost_track_frames is in frames at this rate (the papers' convention), scaled to frame_rate.
_BUFFER_RATE = 30.0
# A lost track whose box overlaps a matched track's this much is a duplicate of an object that
# is tracked already (ByteTrack's 0.85): it is dropped before it can take that
# object's box from its track later.
_DUPLICATE_IOU = 0.85


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (N, 4) with every box in `b` (M, 4), both x1 y1 x2 y2."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(w, 0.0) * np.maximum(h, 0.0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    # Boxes reach here with positive sizes (Tracker.sanitize), so the union is never zero.
    return inter / np.maximum(union, 1e-9)


def _grow(boxes: np.ndarray, ratio: float) -> np.ndarray:
    """Boxes enlarged by `ratio` of their width and height on every side."""
    wh = boxes[:, 2:] - boxes[:, :2]
    return boxes + ratio * np.concatenate([-wh, wh], axis=1)


def _assign(similarity: np.ndarray, threshold: float) -> Tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the similarity-maximising one-to-one matching, pairs below
    `threshold` cut."""
    if similarity.size == 0:
        return np.empty(0, dtype=int), np.empty(0, dtype=int)
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    keep = similarity[rows, cols] >= threshold
    return rows[keep], cols[keep]


def _without(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """`values` in their order, those at `positions` left out (np.setdiff1d's result for
    unique values, without its sort-based search: a tenth of a one-box update)."""
    keep = np.ones(len(values), dtype=bool)
    keep[positions] = False
    return values[keep]


def _median(values: np.ndarray) -> np.ndarray:
    """np.median(values, axis=0) of finite values, without its generic machinery (a tenth of
    an update with a few boxes went to two calls of it)."""
    ordered = np.sort(values, axis=0)
    n = len(ordered)
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2.0


def _xyxy(state: np.ndarray) -> np.ndarray:
    """x1 y1 x2 y2 of centre/size states (N, >=4)."""
    half = 0.5 * state[:, 2:4]
    return np.concatenate([state[:, :2] - half, state[:, :2] + half], axis=1)


def _xywh(boxes: np.ndarray) -> np.ndarray:
    wh = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate([boxes[:, :2] + 0.5 * wh, wh], axis=1)


class ByteTrack:
    """Tracks as rows of arrays: state [x y w h vx vy vw vh] (box centre and size in pixels,
    pixels/second), its covariance, the id (-1 until confirmed), consecutive matches, inferred
    frames since the last match and the time of the last match."""

    def __init__(self, **options) -> None:
        """`options` as configure() takes them."""
        self.configure(**options)
        self.reset()

    def configure(self, track_activation_threshold: float, high_conf_det_threshold: float,
                  minimum_iou_threshold: float, lost_track_frames: int,
                  minimum_consecutive_frames: int, frame_rate: float,
                  class_aware: bool = False) -> None:
        """New thresholds; tracks and ids are kept. A track missed on up to
        `lost_track_frames` x frame_rate / 30 (rounded; at least 1 unless 0) consecutive
        inferred frames (update calls) can still continue: the buffer is in frames at 30 fps,
        so it lasts lost_track_frames / 30 seconds when every frame is inferred, at any rate."""
        self.activation = float(track_activation_threshold)
        self.high = float(high_conf_det_threshold)
        self.min_iou = float(minimum_iou_threshold)
        frames = int(lost_track_frames)
        # 0 still means: gone at the first miss; any other buffer keeps at least one frame.
        self.lost_frames = 0 if frames <= 0 else \
            max(1, int(round(frames * float(frame_rate) / _BUFFER_RATE)))
        self.min_hits = int(minimum_consecutive_frames)
        self.frame_rate = float(frame_rate)
        self.class_aware = bool(class_aware)

    @property
    def max_step(self) -> float:
        """Longest motion-model step (seconds): the buffer's duration at the nominal rate.
        Beyond it a prediction is a guess, and an absurd stamp gap must not overflow a
        covariance."""
        return max(self.lost_frames, 1) / self.frame_rate

    def reset(self) -> None:
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 8, 8))
        self.ids = np.zeros(0, dtype=np.int64)
        self.hits = np.zeros(0, dtype=np.int64)
        self.missed = np.zeros(0, dtype=np.int64)  # inferred frames since the last match
        self.classes = np.zeros(0, dtype=np.int64)  # of the last matched box
        self.time: Optional[float] = None
        self.next_id = 0

    def __len__(self) -> int:
        return len(self.ids)

    def boxes(self) -> np.ndarray:
        return _xyxy(self.mean)

    def extrapolate(self, rows: np.ndarray, seconds: float) -> np.ndarray:
        """Boxes of `rows` moved `seconds` ahead by their velocity; the state is not changed."""
        seconds = min(seconds, self.max_step)
        return _xyxy(self.mean[rows, :4] + seconds * self.mean[rows, 4:])

    def update(self, xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray,
               now: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One frame of boxes (N, 4), scores and class ids (N,) measured at `now` seconds
        (None: one nominal frame after the previous call; equal to the previous: no motion).
        With `class_aware`, a box only continues a track of its own class.

        Returns (detection indices, track ids, track rows) of the boxes that belong to
        confirmed tracks, in detection order.
        """
        if now is None:
            now = (self.time if self.time is not None else 0.0) + 1.0 / self.frame_rate
        dt = 1.0 / self.frame_rate if self.time is None else max(0.0, now - self.time)
        self.time = now
        # Forget first what was missed on more inferred frames than the buffer allows.
        self._keep(self.missed <= self.lost_frames)
        self._predict(min(dt, self.max_step))

        high = np.flatnonzero(scores >= self.high)
        low = np.flatnonzero((scores < self.high) & (scores >= _LOW_SCORE_FLOOR))
        predicted = self.boxes()
        confirmed = np.flatnonzero(self.ids >= 0)
        # 1) confirmed tracks (also lost ones) with strong boxes.
        r1, c1 = _assign(self._similarity(predicted[confirmed], xyxy[high], classes, high,
                                          confirmed), self.min_iou)
        rows = [confirmed[r1]]
        dets = [high[c1]]
        free_high = np.ones(len(high), dtype=bool)
        free_high[c1] = False
        rest = _without(confirmed, r1)
        # The camera's own motion, seen in what matched, moves every track not matched yet.
        predicted = self._follow_shared_motion(confirmed[r1], xyxy[high[c1]], predicted)
        # 1b) what plain overlap missed, by boxes grown on every side (buffered IoU): a fast or
        # small box, or one after skipped frames, whose continuation barely overlaps it.
        if _BUFFER > 0 and len(rest) and free_high.any():
            left = np.flatnonzero(free_high)
            rb, cb = _assign(self._similarity(_grow(predicted[rest], _BUFFER),
                                              _grow(xyxy[high[left]], _BUFFER), classes,
                                              high[left], rest), self.min_iou)
            rows.append(rest[rb])
            dets.append(high[left[cb]])
            free_high[left[cb]] = False
            rest = _without(rest, rb)
        # 2) tracks seen on the previous inferred frame with weak boxes, a clear overlap only.
        # (Stages with nothing to match are skipped: their empty-array calls were ~8 % of an
        # update with a few boxes per frame.)
        recent = rest[self.missed[rest] == 0]
        if len(recent) and len(low):
            r2, c2 = _assign(self._similarity(predicted[recent], xyxy[low], classes, low,
                                              recent), max(self.min_iou, _LOW_SCORE_MIN_IOU))
            rows.append(recent[r2])
            dets.append(low[c2])
        # 3) unconfirmed tracks with the strong boxes still free; a young track has no
        # velocity yet, so it is also tried with buffered boxes.
        tentative = np.flatnonzero(self.ids < 0)
        if len(tentative) and free_high.any():
            left = np.flatnonzero(free_high)
            r3, c3 = _assign(self._similarity(predicted[tentative], xyxy[high[left]], classes,
                                              high[left], tentative), _UNCONFIRMED_MIN_IOU)
            rows.append(tentative[r3])
            dets.append(high[left[c3]])
            free_high[left[c3]] = False
            if _BUFFER > 0:
                tentative = _without(tentative, r3)
                left = np.flatnonzero(free_high)
                rb, cb = _assign(self._similarity(_grow(predicted[tentative], _BUFFER),
                                                  _grow(xyxy[high[left]], _BUFFER), classes,
                                                  high[left], tentative), _UNCONFIRMED_MIN_IOU)
                rows.append(tentative[rb])
                dets.append(high[left[cb]])

        rows = np.concatenate(rows).astype(np.int64)
        dets = np.concatenate(dets).astype(np.int64)
        self._correct(rows, xyxy[dets])
        self.classes[rows] = classes[dets]
        missed = np.ones(len(self), dtype=bool)
        missed[rows] = False
        self.hits[rows] += 1
        self.hits[missed] = 0
        self.missed[rows] = 0
        self.missed[missed] += 1
        self._decay(missed, dt)
        self._confirm(rows)

        # Unconfirmed tracks get no second chance, nor do duplicates of matched ones; new
        # tracks start from unmatched strong boxes.
        det_of_row = np.full(len(self), -1, dtype=np.int64)
        det_of_row[rows] = dets
        alive = ~(missed & (self.ids < 0))
        lost = np.flatnonzero(missed & alive)
        if len(lost) and len(rows):
            boxes = self.boxes()
            alive[lost[(box_iou(boxes[lost], boxes[rows]) > _DUPLICATE_IOU).any(axis=1)]] = False
        self._keep(alive)
        det_of_row = det_of_row[alive]
        used = np.zeros(len(scores), dtype=bool)
        used[dets] = True
        unmatched = high[~used[high]]
        fresh = unmatched[scores[unmatched] >= self.activation]
        first_new = len(self)
        self._start(xyxy[fresh], classes[fresh])
        det_of_row = np.concatenate([det_of_row, fresh])
        self._confirm(np.arange(first_new, len(self)))

        out_rows = np.flatnonzero((det_of_row >= 0) & (self.ids >= 0))
        out_rows = out_rows[np.argsort(det_of_row[out_rows], kind='stable')]
        return det_of_row[out_rows], self.ids[out_rows].copy(), out_rows

    def _follow_shared_motion(self, rows: np.ndarray, boxes: np.ndarray,
                              predicted: np.ndarray) -> np.ndarray:
        """Moves the tracks other than `rows` by the significant median offset (per axis) of
        `boxes`' centres from the predictions of `rows`; returns the predicted boxes after."""
        n = len(rows)
        if n < _SHARED_MIN_MATCHES:
            return predicted
        offset = _xywh(boxes)[:, :2] - self.mean[rows, :2]
        shift = _median(offset)
        mad = _median(np.abs(offset - shift))
        shift[np.abs(shift) <= _SHARED_SIGNIFICANCE * _MEDIAN_SE * mad / np.sqrt(n)] = 0.0
        if not shift.any():
            return predicted
        others = np.ones(len(self), dtype=bool)
        others[rows] = False
        self.mean[others, :2] += shift
        predicted = predicted.copy()
        predicted[others] += np.concatenate([shift, shift])
        return predicted

    def _similarity(self, track_boxes: np.ndarray, det_boxes: np.ndarray, classes: np.ndarray,
                    dets: np.ndarray, rows: np.ndarray) -> np.ndarray:
        iou = box_iou(track_boxes, det_boxes)
        if iou.size:
            iou[self.classes[rows][:, None] != classes[dets][None, :]] *= \
                0.0 if self.class_aware else CLASS_MISMATCH_FACTOR
        return iou

    # ----- the filter, batched over tracks -------------------------------------------------

    def _noise_scale(self, state: np.ndarray) -> np.ndarray:
        """Per-coordinate scale of every noise term: the box size (w h w h for x y w h)."""
        wh = np.maximum(state[:, 2:4], _MIN_SIZE)
        return np.concatenate([wh, wh], axis=1)

    def _predict(self, dt: float) -> None:
        if len(self) == 0 or dt <= 0:
            return
        frames = dt * self.frame_rate
        self.mean[:, :4] += dt * self.mean[:, 4:]
        self.mean[:, 2:4] = np.maximum(self.mean[:, 2:4], _MIN_SIZE)
        # F P F^T for F = [[I, dt I], [0, I]], written out per 4x4 block.
        p = self.cov
        a, b, c, d = p[:, :4, :4], p[:, :4, 4:], p[:, 4:, :4], p[:, 4:, 4:]
        new = np.empty_like(p)
        new[:, :4, :4] = a + dt * (b + c) + dt * dt * d
        new[:, :4, 4:] = b + dt * d
        new[:, 4:, :4] = c + dt * d
        new[:, 4:, 4:] = d
        size = self._noise_scale(self.mean)
        q = np.concatenate([(_STD_POSITION * size) ** 2,
                            (_STD_VELOCITY * size * self.frame_rate) ** 2], axis=1)
        idx = np.arange(8)
        new[:, idx, idx] += frames * q
        self.cov = new

    def _decay(self, missed: np.ndarray, dt: float) -> None:
        """Lost tracks slow down, so their prediction does not run off."""
        if missed.any() and dt > 0:
            self.mean[missed, 4:] *= _LOST_VELOCITY_DECAY ** (dt * self.frame_rate)

    def _correct(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        if len(rows) == 0:
            return
        z = _xywh(boxes)
        mean, p = self.mean[rows], self.cov[rows]
        r = (_STD_POSITION * self._noise_scale(mean)) ** 2
        s = p[:, :4, :4].copy()
        s[:, np.arange(4), np.arange(4)] += r
        # K = P H^T S^-1 with H = [I 0]; solve instead of inverting.
        gain = np.linalg.solve(s, p[:, :4, :]).transpose(0, 2, 1)
        innovation = z - mean[:, :4]
        self.mean[rows] = mean + np.einsum('nij,nj->ni', gain, innovation)
        p = p - gain @ p[:, :4, :]
        self.cov[rows] = 0.5 * (p + p.transpose(0, 2, 1))

    def _initial_cov(self, state: np.ndarray) -> np.ndarray:
        size = self._noise_scale(state)
        var = np.concatenate([(2 * _STD_POSITION * size) ** 2,
                              (10 * _STD_VELOCITY * size * self.frame_rate) ** 2], axis=1)
        cov = np.zeros((len(state), 8, 8))
        cov[:, np.arange(8), np.arange(8)] = var
        return cov

    def _start(self, boxes: np.ndarray, classes: np.ndarray) -> None:
        n = len(boxes)
        if n == 0:
            return
        mean = np.zeros((n, 8))
        mean[:, :4] = _xywh(boxes)
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, self._initial_cov(mean)])
        self.ids = np.concatenate([self.ids, np.full(n, -1, dtype=np.int64)])
        self.hits = np.concatenate([self.hits, np.ones(n, dtype=np.int64)])
        self.missed = np.concatenate([self.missed, np.zeros(n, dtype=np.int64)])
        self.classes = np.concatenate([self.classes, classes.astype(np.int64)])

    def _confirm(self, rows: np.ndarray) -> None:
        rows = rows[(self.ids[rows] < 0) & (self.hits[rows] >= self.min_hits)]
        self.ids[rows] = np.arange(self.next_id, self.next_id + len(rows))
        self.next_id += len(rows)

    def _keep(self, mask: np.ndarray) -> None:
        if mask.all():
            return
        self.mean, self.cov = self.mean[mask], self.cov[mask]
        self.ids, self.hits = self.ids[mask], self.hits[mask]
        self.missed = self.missed[mask]
        self.classes = self.classes[mask]

