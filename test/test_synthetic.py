"""The synthetic scene: ground truth agrees with the pixels, frames are a pure function of
(seed, index), objects enter, leave, occlude each other and shake with the camera."""

import time

import numpy as np
import pytest

from edge_tracker.core.synthetic import (CLASS_COLOURS_BGR, CLASS_NAMES, GroundTruthBox,
                                         SceneObject, SyntheticScene)

W, H = 640, 480


def clean_scene(**kw):
    """Flat background, no noise: a pixel has a class colour only where that class is drawn."""
    return SyntheticScene(W, H, seed=kw.pop('seed', 0), noise=0, texture=0, clutter=0, **kw)


def colour_mask(frame, class_id):
    return np.all(frame == np.array(CLASS_COLOURS_BGR[class_id], np.uint8), axis=2)


def touches_border(b, tol=0.5):
    return b.x1 <= tol or b.y1 <= tol or b.x2 >= W - tol or b.y2 >= H - tol


def test_class_names_and_colours_are_the_models_contract():
    assert CLASS_NAMES[:3] == ('circle', 'square', 'triangle')
    assert len(CLASS_COLOURS_BGR) == len(CLASS_NAMES)


@pytest.mark.parametrize('frame_index', [0, 37, 120, 233])
def test_ground_truth_matches_drawn_pixels(frame_index):
    scene = clean_scene()
    frame = scene.render(frame_index)
    everything = scene.ground_truth(frame_index, min_visibility=0)
    checked = 0
    for class_id in range(len(CLASS_NAMES)):
        mask = colour_mask(frame, class_id)
        same = [b for b in everything if b.class_id == class_id]
        # No pixel of this class colour outside this class's boxes (1 px for edge rounding).
        allowed = np.zeros_like(mask)
        for b in same:
            allowed[max(0, int(b.y1) - 1):int(np.ceil(b.y2)) + 1,
                    max(0, int(b.x1) - 1):int(np.ceil(b.x2)) + 1] = True
        stray = np.argwhere(mask & ~allowed)
        assert len(stray) == 0, f'{CLASS_NAMES[class_id]} pixels outside its gt boxes: {stray[:3]}'
        for b in same:
            if b.visibility < 1.0 or touches_border(b):
                continue
            # Fully visible: the centre has the class colour and the coloured pixels span the
            # box (exact colour excludes anti-aliased edges, hence the 1.5 px tolerance).
            cx, cy = int((b.x1 + b.x2) / 2), int((b.y1 + b.y2) / 2)
            assert mask[cy, cx], f'no {CLASS_NAMES[class_id]} colour at the centre of {b}'
            others = [o for o in same if o is not b]
            r1, r2 = int(b.y1) - 3, int(np.ceil(b.y2)) + 3
            c1, c2 = int(b.x1) - 3, int(np.ceil(b.x2)) + 3
            if any(o.x1 < c2 and o.x2 > c1 and o.y1 < r2 and o.y2 > r1 for o in others):
                continue   # another object of the same colour nearby would blur the extent
            ys, xs = np.nonzero(mask[max(0, r1):r2, max(0, c1):c2])
            extent = (xs.min() + max(0, c1), ys.min() + max(0, r1),
                      xs.max() + 1 + max(0, c1), ys.max() + 1 + max(0, r1))
            assert np.allclose(extent, (b.x1, b.y1, b.x2, b.y2), atol=1.5), (extent, b)
            checked += 1
    assert checked >= 2, 'the frame should have fully visible objects to check'


def test_same_seed_same_frames_and_different_seed_differs():
    a, b, c = SyntheticScene(W, H, seed=7), SyntheticScene(W, H, seed=7), SyntheticScene(W, H, seed=8)
    for index in (0, 123):
        assert np.array_equal(a.render(index), b.render(index))
        assert a.ground_truth(index) == b.ground_truth(index)
        assert not np.array_equal(a.render(index), c.render(index))
    assert a.ground_truth(0) != c.ground_truth(0)


def test_random_access_equals_sequential_rendering():
    sequential = SyntheticScene(W, H, seed=3, shake=3)
    buf = None
    for index in range(51):
        buf = sequential.render(index, buf)
    direct = SyntheticScene(W, H, seed=3, shake=3)
    assert np.array_equal(direct.render(50), buf)
    assert direct.ground_truth(50) == sequential.ground_truth(50)
    # Visiting a far frame first (filling the spawn cache) changes nothing either.
    jumper = SyntheticScene(W, H, seed=3, shake=3)
    jumper.render(20000)
    assert np.array_equal(jumper.render(50), buf)
    assert len(jumper.ground_truth(20000)) > 0, 'objects keep coming at any time'


def test_render_reuses_the_output_buffer():
    scene = SyntheticScene(W, H, seed=1)
    out = np.zeros((H, W, 3), np.uint8)
    assert scene.render(5, out) is out
    assert out.any()
    wrong = np.zeros((10, 10, 3), np.uint8)
    fresh = scene.render(5, wrong)
    assert fresh is not wrong and fresh.shape == (H, W, 3) and np.array_equal(fresh, out)


def test_render_is_cheap():
    scene = SyntheticScene(W, H, seed=0, shake=3)
    buf = scene.render(0)
    t0 = time.perf_counter()
    for index in range(1, 61):
        buf = scene.render(index, buf)
    per_frame_ms = (time.perf_counter() - t0) / 60 * 1e3
    assert per_frame_ms < 10.0, f'{per_frame_ms:.1f} ms per 640x480 frame'


def test_default_scene_is_a_tracking_test():
    scene = SyntheticScene(W, H, seed=0)
    frames = [scene.ground_truth(i) for i in range(300)]
    counts = [len(f) for f in frames]
    assert 4.0 <= np.mean(counts) <= 6.5, np.mean(counts)
    ids = [{b.track_id for b in f} for f in frames]
    entered = set().union(*ids[1:]) - ids[0]
    left = ids[0] - ids[-1]
    assert len(entered) >= 2 and len(left) >= 2, (entered, left)
    # Crossings: some object inside the image is partly hidden by a nearer one.
    occluded = [b for f in frames for b in f if b.visibility < 0.9 and not touches_border(b)]
    assert len(occluded) >= 10
    assert all(0.2 <= b.visibility <= 1.0 for f in frames for b in f)
    sizes = [b.x2 - b.x1 for f in frames for b in f if not touches_border(b)]
    assert max(sizes) > 1.5 * min(sizes), 'sizes should vary'


def test_objects_enter_and_leave_through_the_edges():
    scene = SyntheticScene(W, H, seed=0)
    first, last = {}, {}
    for index in range(400):
        for b in scene.ground_truth(index, min_visibility=0):
            first.setdefault(b.track_id, (index, b))
            last[b.track_id] = (index, b)
    late = [(i, b) for i, b in first.values() if i > 0]
    gone = [(i, b) for i, b in last.values() if i < 399]
    assert len(late) >= 3 and len(gone) >= 3
    for i, b in late + gone:
        assert touches_border(b, tol=1.0), f'object {b.track_id} popped at frame {i}: {b}'


def test_camera_shake_moves_frame_and_ground_truth_together():
    # Textured background (so its shift shows), no sensor noise (which does not shake).
    still = SyntheticScene(W, H, seed=5, noise=0)
    shaky = SyntheticScene(W, H, seed=5, noise=0, shake=6)
    offsets = [shaky.camera_offset(i) for i in range(100)]
    assert all(abs(dx) <= 6 and abs(dy) <= 6 for dx, dy in offsets)
    assert len(set(offsets)) > 10, 'the offset should change from frame to frame'
    assert still.camera_offset(10) == (0, 0)
    index = next(i for i, (dx, dy) in enumerate(offsets) if abs(dx) >= 2 and abs(dy) >= 2)
    dx, dy = offsets[index]
    a, b = still.render(index), shaky.render(index)
    # Interior: the shaky frame is the still one moved by (dx, dy), background and objects.
    m = 8
    assert np.array_equal(b[m:H - m, m:W - m], a[m - dy:H - m - dy, m - dx:W - m - dx])
    boxes_a = {g.track_id: g for g in still.ground_truth(index, min_visibility=0)}
    boxes_b = {g.track_id: g for g in shaky.ground_truth(index, min_visibility=0)}
    inner = [t for t, g in boxes_a.items() if not touches_border(g, tol=8) and t in boxes_b]
    assert inner
    for t in inner:
        ga, gb = boxes_a[t], boxes_b[t]
        assert (gb.x1, gb.y1, gb.x2, gb.y2) == pytest.approx((ga.x1 + dx, ga.y1 + dy,
                                                               ga.x2 + dx, ga.y2 + dy))


def test_ground_truth_is_clipped_to_the_image_with_truncation_in_visibility():
    objs = [SceneObject(1, 1, 60.0, -10.0, 100.0, 0.0, 0.0, bounce=False),     # 20 of 60 px in
            SceneObject(2, 1, 60.0, W + 24.0, 200.0, 0.0, 0.0, bounce=False),  # 6 of 60 px in
            SceneObject(3, 0, 40.0, -50.0, 300.0, 0.0, 0.0, bounce=False)]     # all outside
    scene = clean_scene(objects=objs)
    boxes = {b.track_id: b for b in scene.ground_truth(0)}
    assert set(boxes) == {1}
    b = boxes[1]
    assert (b.x1, b.y1, b.x2, b.y2) == pytest.approx((0.0, 70.0, 20.0, 130.0))
    assert b.visibility == pytest.approx(20 / 60, abs=0.03)
    every = {b.track_id: b for b in scene.ground_truth(0, min_visibility=0)}
    assert set(every) == {1, 2}
    assert every[2].x2 == W and every[2].visibility == pytest.approx(6 / 60, abs=0.03)
    for g in every.values():
        assert 0 <= g.x1 < g.x2 <= W and 0 <= g.y1 < g.y2 <= H


def test_occlusion_follows_depth_and_hides_the_farther_object():
    near = SceneObject(1, 1, 100.0, 200.0, 200.0, 0.0, 0.0, depth=0.0, bounce=False)
    hidden = SceneObject(2, 0, 40.0, 200.0, 200.0, 0.0, 0.0, depth=1.0, bounce=False)
    half = SceneObject(3, 2, 60.0, 400.0, 200.0, 0.0, 0.0, depth=1.0, bounce=False)
    half_cover = SceneObject(4, 1, 60.0, 430.0, 200.0, 0.0, 0.0, depth=0.5, bounce=False)
    scene = clean_scene(objects=[near, hidden, half, half_cover])
    frame = scene.render(0)
    assert not colour_mask(frame, 0).any(), 'the circle is behind the big square'
    gt = {b.track_id: b for b in scene.ground_truth(0, min_visibility=0)}
    assert 2 not in gt
    assert gt[1].visibility == 1.0 and gt[4].visibility == 1.0
    assert gt[3].visibility == pytest.approx(0.5, abs=0.06)   # triangle: right half covered
    assert [b.track_id for b in scene.ground_truth(0)][-1] == 1, 'drawing order: nearest last'
    # Swap the depths: now the circle is drawn on top and everything is visible.
    scene2 = clean_scene(objects=[SceneObject(1, 1, 100.0, 200.0, 200.0, 0.0, 0.0, depth=1.0),
                                  SceneObject(2, 0, 40.0, 200.0, 200.0, 0.0, 0.0, depth=0.0)])
    assert colour_mask(scene2.render(0), 0).sum() > 1000
    assert {b.track_id for b in scene2.ground_truth(0)} == {1, 2}


def test_bouncing_scene_keeps_objects_in_view():
    scene = SyntheticScene(W, H, seed=2, bounce=True, num_objects=4)
    for index in (0, 500, 5000):
        gt = scene.ground_truth(index, min_visibility=0)
        assert sorted(b.track_id for b in gt) == [1, 2, 3, 4]
        assert all(b.x1 >= 0 and b.x2 <= W and b.y1 >= 0 and b.y2 <= H for b in gt)


def test_ground_truth_box_stays_constructible_positionally():
    b = GroundTruthBox(1, 0, 1.0, 2.0, 3.0, 4.0)
    assert b.visibility == 1.0


def test_bad_options_are_refused():
    with pytest.raises(ValueError):
        SyntheticScene(16, 16)
    with pytest.raises(ValueError):
        SyntheticScene(W, H, min_speed=5.0, max_speed=1.0)
    with pytest.raises(ValueError):
        SyntheticScene(W, H, shake=-1)
