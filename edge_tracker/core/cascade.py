"""The cascade's third stage: a deeper look, only at the frames and regions that call for it.

Stage 1 is the motion gate ("is anything here?", core/motion.py), stage 2 the quick detector
("what kind of object?"), stage 3 this: a bigger network on the whole frame, or the same network
at a larger scale on crops around the quick stage's boxes, which is where small, distant objects
missed by a 320 px pass are found.

When it runs (`Trigger`): the quick stage found one of a list of classes, or a box whose score is
in an uncertain band. Where it looks (`regions`): square windows around the triggering boxes, or
the whole frame. How its boxes refine the quick stage's (`refine`), inside the regions it looked
at: a quick box that a deep box overlaps is confirmed (the deep box, class and score replace it),
a quick box the deeper look did not see is removed, a deep box with no quick box is added.
Everything outside the regions stays as the quick stage saw it. The stage of each box is in
`Detections.data['stage']` (QUICK, CONFIRMED, ADDED; REMOVED marks the quick boxes a look
rejected, kept beside the refinement so that later frames can drop them too).
"""

import threading
from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np
import supervision as sv

from edge_tracker.core.bytetrack import box_iou

QUICK, CONFIRMED, ADDED, REMOVED = 0, 1, 2, 3
STAGE_NAMES = {QUICK: 'quick', CONFIRMED: 'confirmed', ADDED: 'added', REMOVED: 'removed'}
_EDGE_PX = 2.0   # a deep box this close to an inner crop edge was cut by the crop


@dataclass(frozen=True)
class Trigger:
    """Which quick-stage boxes call for a deeper look.

    Args:
        classes: class indices whose presence triggers it (empty: none do).
        low, high: a box scoring in [low, high) is uncertain and triggers it; low >= high turns
            this off. The band sits between the detector's `conf` and the tracker's activation
            threshold: boxes the tracker would not trust on their own.
        max_side: only boxes whose longer side is below this many pixels trigger (0: any
            size). Small boxes are where a downscaled pass loses detail; a large uncertain
            box gains little from a closer look.
    """
    classes: Tuple[int, ...] = ()
    low: float = 0.0
    high: float = 0.0
    max_side: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.classes) or self.low < self.high

    def select(self, quick: sv.Detections) -> np.ndarray:
        """Mask of the boxes of `quick` that trigger."""
        n = len(quick)
        hit = np.zeros(n, dtype=bool)
        if n == 0:
            return hit
        if self.classes and quick.class_id is not None:
            hit |= np.isin(np.asarray(quick.class_id), np.asarray(self.classes))
        if self.low < self.high:
            score = np.ones(n) if quick.confidence is None else np.asarray(quick.confidence)
            hit |= (score >= self.low) & (score < self.high)
        if self.max_side > 0:
            b = np.asarray(quick.xyxy, dtype=np.float64).reshape(-1, 4)
            hit &= np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) < self.max_side
        return hit


def regions(boxes: np.ndarray, width: int, height: int, window: int,
            max_regions: int) -> np.ndarray:
    """Square windows (x1, y1, x2, y2 ints) to look at more closely: one around each box, at
    least `window` pixels and twice the box's longer side, moved inside the frame; a box already
    inside a chosen window gets none. At most `max_regions`, in the order of `boxes` (put the
    most important first)."""
    out: List[Tuple[int, int, int, int]] = []
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        if len(out) >= max_regions:
            break
        if any(r[0] <= x1 and r[1] <= y1 and x2 <= r[2] and y2 <= r[3] for r in out):
            continue
        side = int(min(max(window, 2.0 * max(x2 - x1, y2 - y1)), width, height))
        cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        left = int(np.clip(round(cx - side / 2.0), 0, width - side))
        top = int(np.clip(round(cy - side / 2.0), 0, height - side))
        out.append((left, top, left + side, top + side))
    return np.array(out, dtype=np.int64).reshape(-1, 4)


def crops(frame: np.ndarray, windows: np.ndarray) -> List[np.ndarray]:
    """Views (no copies) of `frame` inside each window."""
    return [frame[y1:y2, x1:x2] for x1, y1, x2, y2 in windows]


def from_crops(results: Sequence[sv.Detections], windows: np.ndarray, width: int,
               height: int) -> sv.Detections:
    """The deep stage's boxes of each crop in frame coordinates, without the boxes an inner crop
    edge cut through (the object continues outside the crop; its box there is not its extent)."""
    parts = []
    for dets, (x1, y1, x2, y2) in zip(results, windows):
        if len(dets) == 0:
            continue
        shifted = dets[np.arange(len(dets))]
        shifted.xyxy = np.asarray(dets.xyxy, dtype=np.float64) + np.array([x1, y1, x1, y1])
        b = shifted.xyxy
        cut = ((b[:, 0] < x1 + _EDGE_PX) & (x1 > 0)) | ((b[:, 1] < y1 + _EDGE_PX) & (y1 > 0)) \
            | ((b[:, 2] > x2 - _EDGE_PX) & (x2 < width)) | ((b[:, 3] > y2 - _EDGE_PX) & (y2 < height))
        if (~cut).any():
            parts.append(shifted[~cut])
    if not parts:
        return sv.Detections.empty()
    merged = sv.Detections.merge(parts)
    # Overlapping windows can see one object twice: keep the best-scoring box of each.
    return merged.with_nms(threshold=0.5, class_agnostic=True) if len(parts) > 1 else merged


def refine(quick: sv.Detections, deep: sv.Detections, windows: np.ndarray,
           iou_threshold: float = 0.5,
           with_removed: bool = False) -> Tuple[sv.Detections, Dict[str, int]]:
    """The quick stage's boxes refined by the deep stage's inside `windows` (see the module
    docstring). Returns the boxes (with data['stage']; with `with_removed`, the removed quick
    boxes too, as REMOVED) and how many were confirmed, added and removed. A quick box is
    judged only where it lies wholly inside a window the deeper stage looked at; matching is
    greedy by overlap, one deep box per quick box."""
    qb = np.asarray(quick.xyxy, dtype=np.float64).reshape(-1, 4)
    judged = _inside(qb, windows)
    judged_idx = np.flatnonzero(judged)
    matched_deep = np.zeros(len(deep), dtype=bool)
    confirmed_quick = np.zeros(len(quick), dtype=bool)
    if len(judged_idx) and len(deep):
        overlap = box_iou(qb[judged_idx], np.asarray(deep.xyxy, dtype=np.float64))
        for flat in np.argsort(-overlap, axis=None):
            qi, di = np.unravel_index(flat, overlap.shape)
            if overlap[qi, di] < iou_threshold:
                break
            if confirmed_quick[judged_idx[qi]] or matched_deep[di]:
                continue
            confirmed_quick[judged_idx[qi]] = True
            matched_deep[di] = True
    kept = quick[~judged] if len(quick) else quick
    rejected = quick[judged & ~confirmed_quick] if len(quick) and with_removed else \
        sv.Detections.empty()
    parts, stages = [], []
    for part, stage in ((kept, QUICK), (deep[matched_deep] if len(deep) else deep, CONFIRMED),
                        (deep[~matched_deep] if len(deep) else deep, ADDED),
                        (rejected, REMOVED)):
        if len(part):
            parts.append(_plain(part))
            stages.append(np.full(len(part), stage, dtype=np.int64))
    counts = {'confirmed': int(matched_deep.sum()), 'added': int((~matched_deep).sum()),
              'removed': int(judged.sum() - confirmed_quick.sum())}
    if not parts:
        out = sv.Detections.empty()
        out.data['stage'] = np.empty(0, dtype=np.int64)
        return out, counts
    out = _merge(parts)
    out.data['stage'] = np.concatenate(stages)
    return out, counts


def _plain(dets: sv.Detections) -> sv.Detections:
    """Boxes, scores, classes (and class names when known) only, so detections of both
    stages merge whatever extra data each backend attached."""
    n = len(dets)
    out = sv.Detections(
        xyxy=np.asarray(dets.xyxy, dtype=np.float64).reshape(-1, 4),
        confidence=None if dets.confidence is None else np.asarray(dets.confidence, np.float64),
        class_id=np.zeros(n, np.int64) if dets.class_id is None else np.asarray(dets.class_id))
    if dets.data and 'class_name' in dets.data:
        out.data['class_name'] = np.asarray(dets.data['class_name'], dtype=object)
    return out


def _merge(parts: List[sv.Detections]) -> sv.Detections:
    """Merges plain parts; class names survive only when every part has them."""
    named = all('class_name' in p.data for p in parts)
    for p in parts:
        if not named:
            p.data.pop('class_name', None)
    return sv.Detections.merge(parts) if len(parts) > 1 else parts[0]


def keep(dets: sv.Detections, conf: float) -> sv.Detections:
    """The boxes scoring at least `conf` (the deeper stage sees the quick stage's boxes below
    the detector's `conf`, which the tracker does not get), and every REMOVED one: those are
    verdicts, not detections."""
    if len(dets) == 0 or dets.confidence is None or conf <= 0:
        return dets
    mask = np.asarray(dets.confidence) >= conf
    if 'stage' in dets.data:
        mask |= np.asarray(dets.data['stage']) == REMOVED
    return dets[mask]


def without_removed(dets: sv.Detections) -> sv.Detections:
    """The refinement's detections: all but the REMOVED boxes."""
    if len(dets) == 0 or 'stage' not in dets.data:
        return dets
    return dets[np.asarray(dets.data['stage']) != REMOVED]


class DeepLook:
    """The deeper stage as one call: trigger, windows, the deeper model on them, refinement.

    Args:
        detect_many: the deeper model: a list of BGR images in, one Detections per image out.
        trigger: which quick boxes call for a deeper look.
        window: crop side in pixels around the triggering boxes; 0 looks at the whole frame
            (a bigger network, or the same one at a larger input size).
        max_regions: at most this many windows per frame, the most uncertain boxes first.
        recheck_s: a triggering box that overlaps (IoU >= recheck_iou) what a deeper look
            judged less than this long ago (the deep boxes it found, the quick boxes it
            removed) does not trigger again: the same uncertain object seen on every frame
            is looked at once per recheck_s, not on every frame. 0 looks every time.
    """

    def __init__(self, detect_many, trigger: Trigger, window: int = 320,
                 max_regions: int = 4, recheck_s: float = 0.0,
                 recheck_iou: float = 0.3) -> None:
        self.detect_many = detect_many
        self.trigger = trigger
        self.window = int(window)
        self.max_regions = int(max_regions)
        self.recheck_s = float(recheck_s)
        self.recheck_iou = float(recheck_iou)
        self._judged: Deque[Tuple[float, np.ndarray]] = deque()
        # wanted() runs on the quick workers, look() on the deeper stage's own thread.
        self._lock = threading.Lock()

    def _triggering(self, quick: sv.Detections, stamp: Optional[float]) -> np.ndarray:
        hit = self.trigger.select(quick)
        if self.recheck_s <= 0 or stamp is None or not hit.any():
            return hit
        with self._lock:
            while self._judged and (stamp - self._judged[0][0] > self.recheck_s
                                    or self._judged[0][0] > stamp + self.recheck_s):
                self._judged.popleft()   # too old, or from before a jump back in time
            recent = [boxes for _, boxes in self._judged]
        if not recent:
            return hit
        seen = box_iou(np.asarray(quick.xyxy, np.float64)[hit], np.concatenate(recent))
        hit[np.flatnonzero(hit)] = seen.max(axis=1) < self.recheck_iou
        return hit

    def wanted(self, quick: sv.Detections, stamp: Optional[float] = None) -> bool:
        return bool(self._triggering(quick, stamp).any())

    def look(self, frame: np.ndarray, quick: sv.Detections, stamp: Optional[float] = None):
        """(refined boxes with data['stage'], the REMOVED ones included, counts, windows looked
        at), or None when no box of `quick` triggers (`stamp`, seconds: for recheck_s)."""
        hit = self._triggering(quick, stamp)
        if not hit.any():
            return None
        height, width = frame.shape[:2]
        if self.window <= 0:
            windows = np.array([[0, 0, width, height]], dtype=np.int64)
            deep = self.detect_many([frame])[0]
        else:
            score = np.ones(len(quick)) if quick.confidence is None else \
                np.asarray(quick.confidence)
            order = np.argsort(score[hit], kind='stable')   # most uncertain first
            boxes = np.asarray(quick.xyxy, dtype=np.float64)[hit][order]
            windows = regions(boxes, width, height, self.window, self.max_regions)
            deep = from_crops(self.detect_many(crops(frame, windows)), windows, width, height)
        refined, counts = refine(quick, deep, windows, with_removed=True)
        if self.recheck_s > 0 and stamp is not None:
            judged = [np.asarray(deep.xyxy, np.float64).reshape(-1, 4)]
            inside = _inside(np.asarray(quick.xyxy, np.float64).reshape(-1, 4), windows)
            judged.append(np.asarray(quick.xyxy, np.float64).reshape(-1, 4)[inside & hit])
            with self._lock:
                self._judged.append((stamp, np.concatenate(judged)))
        return refined, counts, windows


def _inside(boxes: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Mask of the boxes lying wholly inside one of the windows."""
    inside = np.zeros(len(boxes), dtype=bool)
    for x1, y1, x2, y2 in np.asarray(windows, dtype=np.float64).reshape(-1, 4):
        inside |= (boxes[:, 0] >= x1) & (boxes[:, 1] >= y1) & (boxes[:, 2] <= x2) \
            & (boxes[:, 3] <= y2)
    return inside


def carry_over(current: sv.Detections, refined: sv.Detections,
               iou_threshold: float = 0.5) -> Tuple[sv.Detections, Dict[str, int]]:
    """A newer frame's quick boxes with an older frame's refinement applied (the tracker's
    rule when the refinement came after that older frame was tracked): each deep box of
    `refined` (stage CONFIRMED or ADDED) that overlaps a box of `current` at `iou_threshold`
    raises that box's score to its own (the confirmation carries over; the newer box keeps its
    place); a deep box that overlaps none is added as a measurement (an object the quick stage
    keeps missing); a box of `current` that no deep box took and that overlaps a REMOVED box
    at `iou_threshold` is dropped (the same false positive again). Matching is greedy by
    overlap, one to one. Returns the boxes (data['stage']: QUICK for untouched, CONFIRMED,
    ADDED) and the counts."""
    stage = np.asarray(refined.data.get('stage', np.zeros(len(refined), np.int64))) \
        if len(refined) else np.empty(0, np.int64)
    deep = refined[(stage == CONFIRMED) | (stage == ADDED)] if len(refined) else refined
    rejected = refined[stage == REMOVED] if len(refined) else refined
    out = _plain(current) if len(current) else sv.Detections.empty()
    n = len(out)
    stages = np.full(n, QUICK, dtype=np.int64)
    counts = {'confirmed': 0, 'added': 0, 'removed': 0}
    taken = np.zeros(n, dtype=bool)
    if n and len(rejected):
        again = box_iou(np.asarray(out.xyxy, np.float64),
                        np.asarray(rejected.xyxy, np.float64)).max(axis=1) >= iou_threshold
    else:
        again = np.zeros(n, dtype=bool)
    if len(deep) == 0:
        out = out[~again] if n else out
        out.data['stage'] = stages[~again]
        counts['removed'] = int(again.sum())
        return out, counts
    matched = np.zeros(len(deep), dtype=bool)
    if n:
        overlap = box_iou(np.asarray(out.xyxy, np.float64), np.asarray(deep.xyxy, np.float64))
        score = np.ones(n) if out.confidence is None else np.array(out.confidence, np.float64)
        deep_score = np.ones(len(deep)) if deep.confidence is None else \
            np.asarray(deep.confidence, np.float64)
        for flat in np.argsort(-overlap, axis=None):
            ci, di = np.unravel_index(flat, overlap.shape)
            if overlap[ci, di] < iou_threshold:
                break
            if taken[ci] or matched[di]:
                continue
            taken[ci] = matched[di] = True
            score[ci] = max(score[ci], deep_score[di])
            stages[ci] = CONFIRMED
        out.confidence = score
    drop = again & ~taken
    counts['confirmed'] = int(matched.sum())
    counts['added'] = int((~matched).sum())
    counts['removed'] = int(drop.sum())
    if n:
        out = out[~drop]
        stages = stages[~drop]
    parts = [p for p in (out, _plain(deep[~matched])) if len(p)]
    if not parts:
        empty = sv.Detections.empty()
        empty.data['stage'] = np.empty(0, dtype=np.int64)
        return empty, counts
    merged = _merge(parts)
    merged.data['stage'] = np.concatenate([stages, np.full(int((~matched).sum()), ADDED,
                                                           dtype=np.int64)])
    return merged, counts


SAME_FRAME, CARRIED, EXPIRED = 'same frame', 'carried over', 'expired'
_STAMP_EPS = 1e-6   # stamps are sums of seconds and nanoseconds: compare with slack


class PendingRefinement:
    """The tracker's side of the deeper stage: the newest refinement, applied to the frames
    the tracker updates with measurements.

    A refinement of the frame at stamp s comes after that frame's quick detections (it starts
    when they are published). At s itself (the quick detections were still waiting in the
    sequencer) the refined boxes replace the quick ones; on every later measured frame up to
    `max_age_s` after s, `carry_over` merges them into that frame's quick boxes, until a newer
    refinement takes its place; older, it is dropped (the objects have moved on). It never
    holds a frame back: the quick stage's detections are answered as they come.
    `max_age_s` 0 applies a refinement only to its own frame.
    """

    def __init__(self, max_age_s: float = 0.05, iou_threshold: float = 0.5) -> None:
        self.max_age_s = max_age_s
        self.iou_threshold = iou_threshold
        self._stamp: Optional[float] = None
        self._refined: Optional[sv.Detections] = None
        self.counts = {SAME_FRAME: 0, CARRIED: 0, EXPIRED: 0, 'confirmed': 0, 'added': 0,
                       'removed': 0}

    def offer(self, stamp: float, refined: sv.Detections, last_tracked: Optional[float]) -> bool:
        """Keeps `refined` unless a newer refinement is held or its frame is already further
        behind the tracker than max_age_s; True when kept."""
        if self._stamp is not None and stamp < self._stamp:
            return False
        if last_tracked is not None and stamp < last_tracked - self.max_age_s - _STAMP_EPS:
            self.counts[EXPIRED] += 1
            return False
        self._stamp, self._refined = stamp, refined
        return True

    def apply(self, stamp: float, quick: sv.Detections) -> Tuple[sv.Detections, Optional[str]]:
        """The detections to track for the frame at `stamp`, and how the refinement was used
        (SAME_FRAME, CARRIED, EXPIRED, or None when none applies)."""
        if self._stamp is None or stamp < self._stamp:
            return quick, None
        since = stamp - self._stamp
        if since == 0:
            self.counts[SAME_FRAME] += 1
            return without_removed(self._refined), SAME_FRAME
        if since > self.max_age_s + _STAMP_EPS:
            self._stamp = self._refined = None
            self.counts[EXPIRED] += 1
            return quick, EXPIRED
        merged, counts = carry_over(quick, self._refined, self.iou_threshold)
        self.counts[CARRIED] += 1
        for key, value in counts.items():
            self.counts[key] += value
        return merged, CARRIED
