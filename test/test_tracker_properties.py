"""Property tests of the tracker's input handling: whatever numbers and stamps arrive, and in
whatever order, Tracker.update (and predict) never raise and give finite boxes with unique,
non-negative integer ids."""

import numpy as np
import pytest
import supervision as sv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from edge_tracker.conversions import msg_to_detections
from edge_tracker.core.tracking import Tracker

# Any float at all: NaN, infinities, huge, tiny, negative.
anything = st.floats(allow_nan=True, allow_infinity=True)
# Any finite float (supervision itself refuses non-finite corners): 1e308, -0.0, 5e-324, ...
finite = st.floats(allow_nan=False, allow_infinity=False)
# Plausible pixel boxes, so that tracks do form and ids get assigned.
coordinate = st.floats(min_value=-50, max_value=2000, allow_nan=False, width=32)
size = st.floats(min_value=-5, max_value=300, allow_nan=False, width=32)
score = st.one_of(st.floats(min_value=0, max_value=1), anything)
stamp = st.one_of(st.none(), anything, st.floats(min_value=0, max_value=1e6))

# trackers announces each duplicate stamp it skips; duplicates are part of the input here.
pytestmark = pytest.mark.filterwarnings('ignore:ByteTrackTracker. duplicate timestamp')

SETTINGS = dict(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_sane(out: sv.Detections) -> None:
    assert isinstance(out, sv.Detections)
    assert out.tracker_id is not None and len(out.tracker_id) == len(out)
    assert np.isfinite(np.asarray(out.xyxy, dtype=np.float64)).all(), out.xyxy
    ids = [int(i) for i in out.tracker_id]
    assert all(i >= 0 for i in ids), ids
    assert len(set(ids)) == len(ids), f'duplicate ids in one output: {ids}'
    assert all(float(i) == float(raw) for i, raw in zip(ids, out.tracker_id)), out.tracker_id


def message(rows) -> Detection2DArray:
    msg = Detection2DArray()
    for cx, cy, w, h, s, name in rows:
        d = Detection2D()
        d.bbox.center.position.x, d.bbox.center.position.y = cx, cy
        d.bbox.size_x, d.bbox.size_y = w, h
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id, hyp.hypothesis.score = name, s
        d.results.append(hyp)
        msg.detections.append(d)
    return msg


def detections(rows, scores, as_size: bool) -> sv.Detections:
    if not rows:
        return sv.Detections.empty()
    a = np.array(rows, dtype=np.float64).reshape(-1, 4)
    if as_size:  # (x, y, w, h) -> corners; negative sizes give inverted boxes
        a[:, 2] += a[:, 0]
        a[:, 3] += a[:, 1]
    return sv.Detections(xyxy=a, confidence=np.array(scores, dtype=np.float32),
                         class_id=np.arange(len(rows)) % 3)


@settings(**SETTINGS)
@given(st.lists(st.tuples(st.lists(st.tuples(anything, anything, anything, anything, score,
                                             st.sampled_from(['car', '', 'ü', '0'])),
                                   max_size=25), stamp),
                min_size=1, max_size=10))
def test_any_numbers_in_messages_never_raise_and_give_sane_tracks(frames):
    """What tracker_node does with each message: convert, then update."""
    tracker, classes = Tracker(minimum_consecutive_frames=1), {}
    for rows, t in frames:
        with np.errstate(all='ignore'):  # inf - inf in the conversion is the point here
            dets = msg_to_detections(message(rows), classes)
        assert_sane(tracker.update(dets, t))
        if t is not None:
            assert_sane(tracker.predict(t + 0.01))


@settings(**SETTINGS)
@given(st.lists(st.tuples(st.lists(st.tuples(st.tuples(finite, finite, finite, finite), score),
                                   max_size=25), stamp),
                min_size=1, max_size=10))
def test_any_finite_boxes_and_any_scores_never_raise(frames):
    """Direct callers (not through a message) can hand over huge, inverted or empty boxes and
    NaN, negative or > 1 scores."""
    tracker = Tracker(minimum_consecutive_frames=1)
    for rows, t in frames:
        with np.errstate(all='ignore'):
            dets = detections([r[0] for r in rows], [r[1] for r in rows], as_size=False)
        assert_sane(tracker.update(dets, t))
        if t is not None:  # predicted boxes come from the motion model, not the input
            assert_sane(tracker.predict(t + 0.05))


@settings(**SETTINGS)
@given(st.lists(st.tuples(st.lists(st.tuples(coordinate, coordinate, size, size),
                                   max_size=40),
                          st.lists(st.floats(0, 1), min_size=40, max_size=40), stamp),
                min_size=1, max_size=15),
       st.integers(1, 3))
def test_plausible_boxes_in_any_stamp_order_keep_ids_sane(frames, min_frames):
    tracker = Tracker(minimum_consecutive_frames=min_frames, lost_track_buffer=5)
    for rows, scores, t in frames:
        dets = detections(rows, scores[:len(rows)], as_size=True)
        assert_sane(tracker.update(dets, t))
        # The same frame again (a duplicate stamp) must not raise or duplicate ids either.
        assert_sane(tracker.update(dets, t))
        assert_sane(tracker.predict(t if t is not None else 0.0))
