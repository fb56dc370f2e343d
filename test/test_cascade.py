"""The cascade's deeper stage: its trigger, its windows, crop results in frame coordinates and
the refinement rule, on boxes that can be checked by hand."""

import numpy as np
import supervision as sv

from edge_tracker.core.cascade import (ADDED, CONFIRMED, QUICK, Trigger, crops, from_crops,
                                       refine, regions)


def dets(rows):
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
    return sv.Detections(xyxy=rows[:, :4], confidence=rows[:, 4], class_id=rows[:, 5].astype(int))


def test_trigger_on_classes_and_on_uncertain_scores():
    quick = dets([[0, 0, 10, 10, 0.9, 0], [0, 0, 10, 10, 0.3, 1], [0, 0, 10, 10, 0.9, 2],
                  [0, 0, 10, 10, 0.5, 1]])
    assert Trigger().select(quick).tolist() == [False] * 4          # off by default
    assert Trigger(classes=(2,)).select(quick).tolist() == [False, False, True, False]
    assert Trigger(low=0.2, high=0.5).select(quick).tolist() == [False, True, False, False]
    assert Trigger(classes=(0,), low=0.2, high=0.5).select(quick).tolist() == \
        [True, True, False, False]
    assert len(Trigger(classes=(0,)).select(sv.Detections.empty())) == 0


def test_regions_are_squares_inside_the_frame_one_per_new_box():
    boxes = np.array([[100, 100, 110, 120],      # small: window of the minimum side
                      [102, 104, 108, 112],      # inside the first window: none of its own
                      [630, 5, 640, 15],         # at a corner: moved inside the frame
                      [200, 200, 400, 300]])     # large: twice its longer side, capped
    w = regions(boxes, 640, 480, window=64, max_regions=10)
    assert w.tolist() == [[73, 78, 137, 142], [576, 0, 640, 64], [100, 50, 500, 450]]
    assert len(regions(boxes, 640, 480, window=64, max_regions=1)) == 1
    frame = np.arange(480 * 640 * 3, dtype=np.uint8).reshape(480, 640, 3)
    views = crops(frame, w)
    assert views[1].shape == (64, 64, 3) and np.shares_memory(views[1], frame)
    assert (views[1][0, 0] == frame[0, 576]).all()


def test_crop_boxes_move_to_the_frame_and_cut_objects_are_dropped():
    windows = np.array([[100, 100, 200, 200], [0, 0, 100, 100]])
    in_crop = [dets([[10, 10, 30, 30, 0.9, 0],     # well inside: kept, moved by (100, 100)
                     [0, 40, 20, 60, 0.8, 1]]),    # on the crop's left edge, inside the frame: cut
               dets([[0, 0, 20, 20, 0.7, 2]])]     # on the frame's own edge: a real box
    out = from_crops(in_crop, windows, 640, 480)
    assert sorted(map(tuple, out.xyxy.tolist())) == [(0, 0, 20, 20), (110, 110, 130, 130)]


def test_refinement_confirms_removes_and_adds_inside_the_windows_only():
    quick = dets([[10, 10, 30, 30, 0.3, 0],      # inside, seen by the deep stage: confirmed
                  [50, 50, 60, 60, 0.35, 1],     # inside, not seen: removed
                  [300, 300, 340, 340, 0.9, 2],  # outside every window: kept as it is
                  [95, 40, 120, 60, 0.4, 0]])    # crosses the window's edge: not judged, kept
    deep = dets([[11, 12, 31, 31, 0.8, 1],       # overlaps the first: replaces it (class too)
                 [70, 70, 80, 80, 0.6, 0]])      # nothing quick there: added
    windows = np.array([[0, 0, 100, 100]])
    out, counts = refine(quick, deep, windows)
    assert counts == {'confirmed': 1, 'added': 1, 'removed': 1}
    by_stage = {s: out.xyxy[out.data['stage'] == s].tolist() for s in (QUICK, CONFIRMED, ADDED)}
    assert sorted(map(tuple, by_stage[QUICK])) == [(95, 40, 120, 60), (300, 300, 340, 340)]
    assert by_stage[CONFIRMED] == [[11, 12, 31, 31]]
    assert by_stage[ADDED] == [[70, 70, 80, 80]]
    confirmed = out[out.data['stage'] == CONFIRMED]
    assert confirmed.class_id.tolist() == [1] and confirmed.confidence.tolist() == [0.8]


def test_refinement_is_one_to_one_and_needs_enough_overlap():
    quick = dets([[10, 10, 30, 30, 0.3, 0], [12, 10, 32, 30, 0.3, 0]])
    deep = dets([[11, 10, 31, 30, 0.9, 0], [40, 40, 45, 45, 0.9, 0]])
    out, counts = refine(quick, deep, np.array([[0, 0, 100, 100]]))
    assert counts == {'confirmed': 1, 'added': 1, 'removed': 1}
    loose = dets([[20, 20, 40, 40, 0.9, 0]])      # IoU 1/7 with the quick box
    out, counts = refine(quick[:1], loose, np.array([[0, 0, 100, 100]]))
    assert counts == {'confirmed': 0, 'added': 1, 'removed': 1}
    out, counts = refine(quick, sv.Detections.empty(), np.empty((0, 4)))
    assert counts == {'confirmed': 0, 'added': 0, 'removed': 0}
    assert (out.data['stage'] == QUICK).all() and len(out) == 2
