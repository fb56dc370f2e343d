"""Governor, motion gate, frame sequencer and tracker prediction, without ROS."""

import numpy as np
import supervision as sv

from edge_tracker.core.governor import Governor, Reactions
from edge_tracker.core.motion import MotionGate
from edge_tracker.core.sequencer import LATE, MEASURED, PREDICTED, FrameSequencer
from edge_tracker.core.tracking import Tracker


def test_governor_levels_multiply_frame_skip_switch_model_and_pause():
    g = Governor(Reactions(warm_frame_skip=2, hot_frame_skip=3, critical_frame_skip=6,
                           fallback_level=2, critical_pause=True), frame_skip=2,
                 has_fallback=True)
    assert (g.mode.frame_skip, g.mode.use_fallback, g.mode.paused) == (2, False, False)
    changed, mode = g.update(level=1)
    assert changed and (mode.frame_skip, mode.use_fallback) == (4, False)
    _, mode = g.update(level=2)
    assert (mode.frame_skip, mode.use_fallback) == (6, True)
    _, mode = g.update(level=3)
    assert mode.paused and 'paused' in mode.describe()
    changed, mode = g.update(level=3)
    assert not changed
    _, mode = g.update(level=0)
    assert (mode.frame_skip, mode.use_fallback, mode.paused) == (2, False, False)
    _, mode = g.update(level=9)  # garbage level: treated as the worst one
    assert mode.level == 3


def test_governor_without_fallback_and_without_pause():
    g = Governor(Reactions(critical_pause=False, critical_frame_skip=5), has_fallback=False)
    _, mode = g.update(level=3)
    assert (mode.paused, mode.use_fallback, mode.frame_skip) == (False, False, 5)


def _frame(with_object_at=None):
    rng = np.random.default_rng(1)
    base = np.full((240, 320, 3), 90, np.uint8)
    noisy = np.clip(base.astype(int) + rng.integers(-6, 7, base.shape), 0, 255).astype(np.uint8)
    if with_object_at is not None:
        x = with_object_at
        noisy[100:140, x:x + 40] = (30, 200, 30)
    return noisy


def test_motion_gate_blocks_a_static_scene_and_passes_the_first_frame_with_motion():
    gate = MotionGate(refresh_s=0)
    assert gate.check(_frame(), now=0.0)           # first frame: nothing to compare with
    assert not any(gate.check(_frame(), now=t) for t in range(1, 20))
    assert gate.check(_frame(with_object_at=10), now=20.0)
    assert gate.check(_frame(with_object_at=30), now=21.0)   # still moving
    assert not gate.check(_frame(with_object_at=30), now=22.0)  # stopped
    assert gate.blocked == 20 and gate.passed == 3


def test_motion_gate_refreshes_static_scenes():
    gate = MotionGate(refresh_s=2.0)
    passed = [gate.check(_frame(), now=t * 0.5) for t in range(10)]
    assert passed == [True, False, False, False, True, False, False, False, True, False]


def test_sequencer_answers_every_frame_in_order():
    seq = FrameSequencer(min_wait_s=0.05, max_wait_s=0.2)
    out = []
    for i in range(9):  # detector runs on every third frame, 30 ms after the frame
        stamp = i / 30
        seq.frame(stamp, now=stamp)
        out += seq.ready(now=stamp)
        if i % 3 == 0:
            seq.detections(stamp, f'd{i}', now=stamp + 0.03)
            out += seq.ready(now=stamp + 0.03)
    out += seq.ready(now=10.0)
    assert [round(s * 30) for _, s, _ in out] == list(range(9))
    assert [k for k, _, _ in out] == [MEASURED, PREDICTED, PREDICTED] * 3
    assert out[3][2] == 'd3'


def test_sequencer_waits_for_detections_then_gives_up_and_reports_late_ones():
    seq = FrameSequencer(min_wait_s=0.05, max_wait_s=0.2)
    seq.frame(1.0, now=1.0)
    assert seq.ready(now=1.1) == []            # still inside the wait
    assert seq.ready(now=1.3) == [(PREDICTED, 1.0, None)]
    assert seq.detections(1.0, 'late', now=1.35) == (LATE, 1.0, 'late')
    seq.detections(2.0, 'x', now=2.0)          # detections without camera_info define frames
    assert seq.ready(now=2.0) == [(MEASURED, 2.0, 'x')]
    seq.frame(1.5, now=2.1)                    # older than what was answered: ignored
    assert seq.ready(now=5.0) == []


def _boxes(t):
    """Two squares moving linearly (pixels per frame: +4,+1 and -3,+2)."""
    return np.array([[100 + 4 * t, 100 + t, 150 + 4 * t, 150 + t],
                     [400 - 3 * t, 50 + 2 * t, 440 - 3 * t, 90 + 2 * t]], np.float64)


def test_tracker_predicts_linear_motion_on_skipped_frames():
    tracker = Tracker(minimum_consecutive_frames=1, frame_rate=30.0)
    errors = []
    for t in range(60):
        stamp = 10.0 + t / 30
        if t % 3 == 0:
            dets = sv.Detections(xyxy=_boxes(t), confidence=np.array([0.9, 0.9]),
                                 class_id=np.array([0, 1]))
            out = tracker.update(dets, stamp)
            assert len(out) == 2  # minimum_consecutive_frames 1: ids at once
        else:
            out = tracker.predict(stamp)
            assert sorted(out.tracker_id) == [0, 1]
            if t > 15:
                truth = _boxes(t)
                for box, tid in zip(out.xyxy, out.tracker_id):
                    errors.append(np.abs(box - truth[tid]).max())
    assert max(errors) < 3.0, f'prediction error up to {max(errors):.2f} px'
    assert tracker.last_stamp == 10.0 + 57 / 30


def test_tracker_prediction_stops_after_the_lost_duration_and_ignores_the_past():
    tracker = Tracker(minimum_consecutive_frames=1, frame_rate=30.0, lost_track_buffer=30)
    for t in range(3):
        tracker.update(sv.Detections(xyxy=_boxes(t), confidence=np.array([0.9, 0.9]),
                                     class_id=np.array([0, 1])), t / 30)
    assert len(tracker.predict(2 / 30 + 0.5)) == 2
    assert len(tracker.predict(2 / 30 + 1.5)) == 0   # past lost_track_buffer / 30 = 1 s
    assert len(tracker.predict(0.0)) == 0            # before the last update
    assert len(tracker.update(sv.Detections(xyxy=_boxes(0), confidence=np.array([.9, .9]),
                                            class_id=np.array([0, 1])), 0.0)) == 0
    assert tracker.out_of_order == 1


def test_tracker_survives_garbage_bursts_and_long_gaps():
    tracker = Tracker(minimum_consecutive_frames=1)
    rng = np.random.default_rng(0)
    xyxy = rng.uniform(0, 1000, (400, 4))
    xyxy[:, 2:] = xyxy[:, :2] + rng.uniform(-5, 50, (400, 2))   # some negative sizes
    xyxy[::17] = [10, 10, 5, 5]   # inverted corners (NaN cannot even enter sv.Detections)
    xyxy[5] = [1e30, 0, 2e30, 5]
    dets = sv.Detections(xyxy=xyxy, confidence=rng.uniform(0, 1, 400),
                         class_id=np.zeros(400, int))
    out = tracker.update(dets, 1.0)
    assert np.isfinite(out.xyxy).all()
    out = tracker.update(dets, 1.0)        # duplicate stamp
    out = tracker.update(dets, 500.0)      # a gap of minutes
    assert np.isfinite(out.xyxy).all() and len(set(out.tracker_id)) == len(out)


def test_motion_gate_on_real_footage_skips_the_empty_room(capsys):
    import cv2

    from conftest import shared_video
    cap = cv2.VideoCapture(str(shared_video('one-by-one-person-detection.mp4')))
    fps = cap.get(cv2.CAP_PROP_FPS)
    gate, index = MotionGate(), 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        gate.check(frame, index / fps)
        index += 1
    with capsys.disabled():
        print(f'\nmotion gate on one-by-one-person-detection.mp4: {gate.blocked} of {index} '
              f'frames skipped, {gate.passed} inferred')
    assert index == 1394
    assert gate.blocked > 0.5 * index        # mostly an empty or still room
    assert gate.passed > 0.15 * index        # but people walking through are seen


def test_sequencer_answers_skipped_frames_without_waiting():
    seq = FrameSequencer(min_wait_s=0.5, max_wait_s=1.0)
    seq.frame(1.0, now=1.0)
    seq.skipped(1.0, now=1.001)
    assert seq.ready(now=1.002) == [(PREDICTED, 1.0, None)]
    seq.frame(2.0, now=2.0)
    seq.frame(3.0, now=3.0)
    seq.skipped(3.0, now=3.0)          # but frame 2 is still waiting for its detections
    assert seq.ready(now=3.0) == []
    seq.detections(2.0, 'd2', now=3.1)
    assert [k for k, _, _ in seq.ready(now=3.1)] == [MEASURED, PREDICTED]


def test_sequencer_memory_stays_bounded_when_nothing_is_drained():
    seq = FrameSequencer(max_frames=50)
    for i in range(1000):
        seq.frame(float(i), now=0.0)
        seq.detections(float(i) + 0.5, 'd', now=0.0)
    assert len(seq._frames) <= 50 and len(seq._detections) <= 50
