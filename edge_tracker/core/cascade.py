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
`Detections.data['stage']` (QUICK, CONFIRMED, ADDED).
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np
import supervision as sv

from edge_tracker.core.bytetrack import box_iou

QUICK, CONFIRMED, ADDED = 0, 1, 2
STAGE_NAMES = {QUICK: 'quick', CONFIRMED: 'confirmed', ADDED: 'added'}
_EDGE_PX = 2.0   # a deep box this close to an inner crop edge was cut by the crop


@dataclass(frozen=True)
class Trigger:
    """Which quick-stage boxes call for a deeper look.

    Args:
        classes: class indices whose presence triggers it (empty: none do).
        low, high: a box scoring in [low, high) is uncertain and triggers it; low >= high turns
            this off. The band sits between the detector's `conf` and the tracker's activation
            threshold: boxes the tracker would not trust on their own.
    """
    classes: Tuple[int, ...] = ()
    low: float = 0.0
    high: float = 0.0

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
           iou_threshold: float = 0.5) -> Tuple[sv.Detections, Dict[str, int]]:
    """The quick stage's boxes refined by the deep stage's inside `windows` (see the module
    docstring). Returns the boxes (with data['stage']) and how many were confirmed, added and
    removed. A quick box is judged only where it lies wholly inside a window the deeper stage
    looked at; matching is greedy by overlap, one deep box per quick box."""
    windows = np.asarray(windows, dtype=np.float64).reshape(-1, 4)
    qb = np.asarray(quick.xyxy, dtype=np.float64).reshape(-1, 4)
    judged = np.zeros(len(quick), dtype=bool)
    for x1, y1, x2, y2 in windows:
        judged |= (qb[:, 0] >= x1) & (qb[:, 1] >= y1) & (qb[:, 2] <= x2) & (qb[:, 3] <= y2)
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
    parts, stages = [], []
    for part, stage in ((kept, QUICK), (deep[matched_deep] if len(deep) else deep, CONFIRMED),
                        (deep[~matched_deep] if len(deep) else deep, ADDED)):
        if len(part):
            parts.append(_plain(part))
            stages.append(np.full(len(part), stage, dtype=np.int64))
    counts = {'confirmed': int(matched_deep.sum()), 'added': int((~matched_deep).sum()),
              'removed': int(judged.sum() - confirmed_quick.sum())}
    if not parts:
        out = sv.Detections.empty()
        out.data['stage'] = np.empty(0, dtype=np.int64)
        return out, counts
    out = sv.Detections.merge(parts)
    out.data['stage'] = np.concatenate(stages)
    return out, counts


def _plain(dets: sv.Detections) -> sv.Detections:
    """Boxes, scores and classes only, so detections of both stages merge whatever extra data
    each backend attached."""
    n = len(dets)
    return sv.Detections(
        xyxy=np.asarray(dets.xyxy, dtype=np.float64).reshape(-1, 4),
        confidence=None if dets.confidence is None else np.asarray(dets.confidence, np.float64),
        class_id=np.zeros(n, np.int64) if dets.class_id is None else np.asarray(dets.class_id))
