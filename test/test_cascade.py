"""The cascade's deeper stage: its trigger, its windows, crop results in frame coordinates,
the refinement rule and how the tracker applies it later, on boxes that can be checked by hand;
the thermal governor stopping it first."""

import numpy as np
import supervision as sv

from edge_tracker.core.cascade import (ADDED, CARRIED, CONFIRMED, EXPIRED, QUICK, REMOVED,
                                       SAME_FRAME,
                                       DeepLook, PendingRefinement, Trigger, carry_over, crops,
                                       from_crops, keep, refine, regions)
from edge_tracker.core.governor import Governor, Reactions


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
    assert not Trigger().active and Trigger(classes=(1,)).active
    assert not Trigger(low=0.5, high=0.5).active and Trigger(low=0.2, high=0.5).active


def test_trigger_can_be_limited_to_small_boxes():
    quick = dets([[0, 0, 10, 30, 0.3, 0],        # longer side 30
                  [0, 0, 40, 10, 0.3, 0],        # longer side 40: not below 40
                  [0, 0, 8, 8, 0.9, 0]])         # small but certain
    assert Trigger(low=0.2, high=0.5, max_side=40).select(quick).tolist() == \
        [True, False, False]
    assert Trigger(classes=(0,), max_side=20).select(quick).tolist() == [False, False, True]


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


def test_deep_look_crops_the_most_uncertain_boxes_and_maps_back():
    frame = np.zeros((480, 640, 3), np.uint8)
    quick = dets([[100, 100, 120, 120, 0.4, 0],    # uncertain
                  [500, 300, 520, 320, 0.2, 0],    # more uncertain: looked at first
                  [300, 50, 340, 90, 0.9, 1]])     # certain: no window of its own
    seen = []

    def deeper(images):
        seen.extend(im.shape for im in images)
        # in each 64 px crop, one box at its centre (crop coordinates)
        return [dets([[22, 22, 42, 42, 0.8, 0]]) for _ in images]

    look = DeepLook(deeper, Trigger(low=0.1, high=0.5), window=64, max_regions=4)
    assert not look.wanted(quick[2:]) and look.wanted(quick)
    refined, counts, windows = look.look(frame, quick)
    assert windows.tolist() == [[478, 278, 542, 342], [78, 78, 142, 142]]
    assert seen == [(64, 64, 3), (64, 64, 3)]
    assert counts == {'confirmed': 2, 'added': 0, 'removed': 0}
    assert sorted(map(tuple, refined.xyxy[refined.data['stage'] == CONFIRMED].tolist())) == \
        [(100, 100, 120, 120), (500, 300, 520, 320)]
    assert refined.xyxy[refined.data['stage'] == QUICK].tolist() == [[300, 50, 340, 90]]
    assert look.look(frame, quick[2:]) is None
    whole = DeepLook(lambda images: [dets([[10, 10, 20, 20, 0.7, 2]])], Trigger(classes=(1,)),
                     window=0)
    refined, counts, windows = whole.look(frame, quick)
    assert windows.tolist() == [[0, 0, 640, 480]]
    # the whole frame was looked at: every quick box was judged, none seen again
    assert counts == {'confirmed': 0, 'added': 1, 'removed': 3}
    # the rejected quick boxes come along, marked, whatever their score
    assert sorted(refined.confidence[refined.data['stage'] == REMOVED].tolist()) == \
        [0.2, 0.4, 0.9]
    assert len(keep(refined, 0.5)) == 4 and keep(quick, 0.3).confidence.tolist() == [0.4, 0.9]


def test_carry_over_raises_matched_scores_and_adds_the_missed():
    refined = dets([[10, 10, 30, 30, 0.8, 0], [70, 70, 80, 80, 0.6, 1],
                    [300, 300, 340, 340, 0.9, 2]])
    refined.data['stage'] = np.array([CONFIRMED, ADDED, QUICK])
    current = dets([[12, 11, 32, 31, 0.3, 0],     # moved a little: the confirmation carries
                    [300, 302, 340, 342, 0.9, 2],  # quick in the refinement: nothing to carry
                    [200, 200, 220, 220, 0.4, 1]])  # new: stays as it is
    out, counts = carry_over(current, refined)
    assert counts == {'confirmed': 1, 'added': 1, 'removed': 0}
    by_stage = {s: out[out.data['stage'] == s] for s in (QUICK, CONFIRMED, ADDED)}
    assert by_stage[CONFIRMED].xyxy.tolist() == [[12, 11, 32, 31]]
    assert by_stage[CONFIRMED].confidence.tolist() == [0.8]
    assert by_stage[ADDED].xyxy.tolist() == [[70, 70, 80, 80]]
    assert sorted(by_stage[QUICK].confidence.tolist()) == [0.4, 0.9]
    out, counts = carry_over(sv.Detections.empty(), refined)
    assert counts == {'confirmed': 0, 'added': 2, 'removed': 0} and len(out) == 2
    # A box the deeper look rejected is dropped again on the newer frame, unless a deep box
    # took it.
    rejected = dets([[200, 200, 220, 220, 0.4, 1], [10, 10, 30, 30, 0.35, 0]])
    rejected.data['stage'] = np.array([REMOVED, REMOVED])
    both = sv.Detections.merge([refined, rejected])
    out, counts = carry_over(current, both)
    assert counts == {'confirmed': 1, 'added': 1, 'removed': 1}
    assert sorted(map(tuple, out.xyxy.tolist())) == [(12, 11, 32, 31), (70, 70, 80, 80),
                                                      (300, 302, 340, 342)]
    out, counts = carry_over(current, rejected)       # no deep box takes either: both go
    assert counts == {'confirmed': 0, 'added': 0, 'removed': 2}
    assert out.xyxy.tolist() == [[300, 302, 340, 342]]


def test_pending_refinement_replaces_its_own_frame_and_carries_to_later_ones():
    quick = dets([[12, 11, 32, 31, 0.3, 0]])
    refined = dets([[10, 10, 30, 30, 0.8, 0], [70, 70, 80, 80, 0.6, 1]])
    refined.data['stage'] = np.array([CONFIRMED, ADDED])
    pending = PendingRefinement(max_age_s=0.1)
    assert pending.apply(1.0, quick) == (quick, None)         # nothing offered yet
    # Frame 1.0 still waits for its detections: the refinement replaces them.
    assert pending.offer(1.0, refined, last_tracked=0.9)
    assert pending.apply(0.95, quick) == (quick, None)       # an older frame: not for it
    out, how = pending.apply(1.0, quick)
    assert how == SAME_FRAME and out.xyxy.tolist() == refined.xyxy.tolist()
    # Later measured frames within max_age_s get it merged in; past that it is dropped.
    for stamp in (1.05, 1.1):
        out, how = pending.apply(stamp, quick)
        assert how == CARRIED and len(out) == 2
        assert sorted(out.confidence.tolist()) == [0.6, 0.8]
        assert out.data['stage'].tolist() == [CONFIRMED, ADDED]
    assert pending.apply(1.15, quick) == (quick, EXPIRED)
    assert pending.apply(1.2, quick) == (quick, None)
    # Frame 2.0 was tracked already (the tracker is at 2.05): merged into the next frame.
    assert pending.offer(2.0, refined, last_tracked=2.05)
    assert pending.apply(2.08, quick)[1] == CARRIED
    # Already too old on arrival: dropped at once.
    assert not pending.offer(2.0, refined, last_tracked=2.2)
    # A newer refinement wins; an older one arriving after it does not replace it.
    assert pending.offer(3.0, refined, last_tracked=2.9)
    assert not pending.offer(2.95, refined[:1], last_tracked=2.9)
    assert pending.apply(3.0, quick)[1] == SAME_FRAME
    assert pending.counts == {SAME_FRAME: 2, CARRIED: 3, EXPIRED: 2, 'confirmed': 3,
                              'added': 3, 'removed': 0}
    marked = dets([[10, 10, 30, 30, 0.8, 0], [70, 70, 80, 80, 0.6, 1], [50, 50, 60, 60, 0.3, 0]])
    marked.data['stage'] = np.array([CONFIRMED, ADDED, REMOVED])
    assert pending.offer(4.0, marked, last_tracked=3.9)
    out, how = pending.apply(4.0, quick)     # its own frame: the rejected box is not tracked
    assert how == SAME_FRAME and out.data['stage'].tolist() == [CONFIRMED, ADDED]
    only_own = PendingRefinement(max_age_s=0.0)
    assert only_own.offer(1.0, refined, last_tracked=0.9)
    assert only_own.apply(1.0, quick)[1] == SAME_FRAME
    assert only_own.apply(1.01, quick) == (quick, EXPIRED)


def test_recheck_looks_at_an_object_again_only_after_recheck_s():
    frame = np.zeros((480, 640, 3), np.uint8)
    calls = []

    def deeper(images):
        calls.append(len(images))
        return [dets([[22, 22, 42, 42, 0.8, 0]]) for _ in images]   # confirms the box

    look = DeepLook(deeper, Trigger(low=0.1, high=0.5), window=64, recheck_s=0.5)
    first = dets([[100, 100, 120, 120, 0.3, 0]])
    moved = dets([[103, 101, 123, 121, 0.3, 0]])
    other = dets([[103, 101, 123, 121, 0.3, 0], [400, 300, 420, 320, 0.3, 0]])
    assert look.look(frame, first, 0.0) is not None
    assert not look.wanted(moved, 0.2) and look.look(frame, moved, 0.2) is None
    # a new uncertain box elsewhere triggers; the look covers only it
    _, _, windows = look.look(frame, other, 0.3)
    assert windows.tolist() == [[378, 278, 442, 342]]
    assert look.wanted(moved, 0.6)                               # 0.6 s after its look
    assert look.wanted(moved, -5.0)                              # time jumped back: forgotten
    assert calls == [1, 1]
    always = DeepLook(deeper, Trigger(low=0.1, high=0.5), window=64)
    assert always.look(frame, first, 0.0) is not None and always.wanted(moved, 0.1)


def test_governor_stops_the_deeper_stage_before_anything_else():
    reactions = Reactions(warm_frame_skip=2, hot_frame_skip=3, critical_frame_skip=6,
                          fallback_level=2, critical_pause=True)
    g = Governor(reactions, frame_skip=1, has_fallback=True, has_deep=True)
    assert g.mode.deep and 'deeper stage on' in g.mode.describe()
    modes = [g.update(level=level)[1] for level in (0, 1, 2, 3)]
    assert [m.deep for m in modes] == [True, False, False, False]
    # every other reaction starts at a level where the deeper stage is already stopped
    for m in modes:
        shed = m.frame_skip > 1 or m.use_fallback or m.paused
        assert not (shed and m.deep)
    # with warm_frame_skip 1, stopping the deeper stage is all that warm does
    g = Governor(Reactions(warm_frame_skip=1), has_fallback=True, has_deep=True)
    normal, warm = g.mode, g.update(level=1)[1]
    assert (warm.frame_skip, warm.use_fallback, warm.paused) == \
        (normal.frame_skip, normal.use_fallback, normal.paused)
    assert normal.deep and not warm.deep
    assert g.update(level=0)[1].deep                           # back on when it cools
    assert not Governor(Reactions()).mode.deep                  # off unless configured


def test_cascade_eval_chooses_the_fewest_looks_that_keep_the_gain():
    from edge_tracker.tools.cascade_eval import choose, gain_shares, parse_candidate, label

    def row(seed, variant, hota, ms, share=0.0, candidate=''):
        return {'seed': seed, 'variant': variant, 'candidate': candidate, 'HOTA': hota,
                'IDF1': hota, 'recall_small': hota, 'infer_ms_per_frame': ms,
                'deep_share': share}

    rows = []
    for seed in (1, 2):
        rows += [row(seed, 'quick only', 0.5, 10), row(seed, 'deeper only', 0.9, 110),
                 row(seed, 'cascade', 0.8, 60, 0.9, 'wide'),     # 75 % of the gain
                 row(seed, 'cascade', 0.72, 30, 0.4, 'narrow'),  # 55 %
                 row(seed, 'cascade', 0.6, 20, 0.2, 'rare')]     # 25 %
    gain_shares(rows)
    wide = next(r for r in rows if r['candidate'] == 'wide')
    assert abs(wide['HOTA_gain_share'] - 0.75) < 1e-9 and abs(wide['cost_share'] - 0.5) < 1e-9
    assert choose(rows, 0.5) == 'narrow'
    assert choose(rows, 0.7) == 'wide'
    assert choose(rows, 0.99) == 'wide'          # none keeps that much: the one keeping most
    trigger, recheck = parse_candidate('0.1:0.5:0:0.2')
    assert (trigger.low, trigger.high, trigger.max_side, recheck) == (0.1, 0.5, 0.0, 0.2)
    assert label(parse_candidate('0.1:0.5')) == '[0.1, 0.5)'
