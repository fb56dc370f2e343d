"""MOTChallenge sequences written from the synthetic scene read back exactly."""

import os

import cv2
import numpy as np
import pytest

from edge_tracker.core.mot import (MotFrame, read_mot, read_seqinfo, write_results,
                                   write_seqinfo, write_sequence)
from edge_tracker.core.synthetic import SyntheticScene
from edge_tracker.tools import render_scene


def test_image_sequence_round_trip(tmp_path):
    scene = SyntheticScene(320, 240, seed=4, shake=2)
    paths = write_sequence(scene, str(tmp_path), 40, name='syn4', frame_rate=25)
    assert sorted(os.listdir(tmp_path / 'img1')) == [f'{i:06d}.jpg' for i in range(1, 41)]
    img = cv2.imread(str(tmp_path / 'img1' / '000007.jpg'))
    assert img.shape == (240, 320, 3)
    assert np.abs(img.astype(int) - scene.render(6).astype(int)).mean() < 4   # jpeg, frame 7 = 6

    info = read_seqinfo(paths['seqinfo'])
    assert info == {'name': 'syn4', 'imDir': 'img1', 'frameRate': 25.0, 'seqLength': 40,
                    'imWidth': 320, 'imHeight': 240, 'imExt': '.jpg'}

    data = read_mot(paths['gt'])
    assert data.last_frame <= 40
    n = 0
    for index in range(40):
        gt = scene.ground_truth(index)
        got = data.get(index + 1)
        assert list(got.ids) == [b.track_id for b in gt]
        expected = np.array([[b.x1, b.y1, b.x2, b.y2] for b in gt]).reshape(-1, 4)
        # Written with 3 decimals: left/top exact to that, right/bottom = left + width.
        assert np.allclose(got.boxes, expected, atol=1.1e-3)
        assert list(got.classes) == [b.class_id + 1 for b in gt]
        assert np.allclose(got.visibilities, [b.visibility for b in gt], atol=1e-4)
        assert np.all(got.confidences == 1)
        n += len(gt)
    assert n == len(data) and n > 40


def test_gt_file_text_is_mot_formatted(tmp_path):
    scene = SyntheticScene(320, 240, seed=0)
    paths = write_sequence(scene, str(tmp_path), 3)
    b = scene.ground_truth(0)[0]
    first = open(paths['gt']).readline().strip().split(',')
    assert first[:2] == ['1', str(b.track_id)]
    assert [float(v) for v in first[2:6]] == pytest.approx(
        [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1], abs=1e-3)
    assert first[6:8] == ['1', str(b.class_id + 1)]


def test_video_sequence(tmp_path):
    scene = SyntheticScene(320, 240, seed=1)
    paths = write_sequence(scene, str(tmp_path), 12, video=True)
    assert not os.path.exists(tmp_path / 'img1')
    cap = cv2.VideoCapture(paths['video'])
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) == 12 and frames[0].shape == (240, 320, 3)
    assert np.abs(frames[3].astype(int) - scene.render(3).astype(int)).mean() < 6
    info = read_seqinfo(paths['seqinfo'])
    assert info['seqLength'] == 12 and info['video'] == os.path.basename(paths['video'])


def test_detection_and_result_files(tmp_path):
    path = str(tmp_path / 'det.txt')
    write_results(path, [(1, -1, 10.0, 20.0, 30.0, 40.0, 0.9),
                         (1, -1, 50.0, 60.0, 5.0, 6.0, 0.2),
                         (3, -1, 1.5, 2.5, 3.0, 4.0, 0.75)])
    data = read_mot(path, kind='det')
    assert sorted(data.frames) == [1, 3]
    assert np.allclose(data.get(1).boxes, [[10, 20, 40, 60], [50, 60, 55, 66]])
    assert np.allclose(data.get(3).confidences, [0.75])
    assert list(data.get(1).classes) == [-1, -1]
    assert len(data.get(2)) == 0 and data.get(2).boxes.shape == (0, 4)
    strong = read_mot(path, kind='det', min_confidence=0.5)
    assert len(strong.get(1)) == 1 and len(strong) == 2
    assert len(MotFrame.empty()) == 0


def test_reader_rejects_malformed_lines(tmp_path):
    path = tmp_path / 'gt.txt'
    path.write_text('1,1,0,0,10,10,1,1,1\n2,1,0,zero,10,10,1,1,1\n')
    with pytest.raises(ValueError, match=':2:'):
        read_mot(str(path))
    path.write_text('1,1,0\n')
    with pytest.raises(ValueError, match='6 columns'):
        read_mot(str(path))
    with pytest.raises(ValueError):
        read_mot(str(path), kind='tracks')


def test_seqinfo_keeps_mot_key_case(tmp_path):
    path = str(tmp_path / 'seqinfo.ini')
    write_seqinfo(path, 'x', 29.97, 10, 64, 48)
    text = open(path).read()
    assert 'seqLength=10' in text and 'imWidth=64' in text and 'frameRate=29.97' in text


def test_render_scene_cli(tmp_path, capsys):
    assert render_scene.main(['--out', str(tmp_path), '--frames', '5', '--seed', '2',
                              '--width', '160', '--height', '120']) == 0
    assert len(os.listdir(tmp_path / 'img1')) == 5
    info = read_seqinfo(str(tmp_path / 'seqinfo.ini'))
    assert (info['imWidth'], info['imHeight'], info['name']) == (160, 120, 'synthetic-2')
    with pytest.raises(SystemExit):
        render_scene.main(['--out', str(tmp_path), '--frames', '0'])


# --- the forward-moving camera (edge_eval mot --simulate) ----------------------------------

def _forward_sequence(tmp_path, gt_rows, det_rows, length):
    from edge_tracker.core.mot import load_sequence, write_gt, write_seqinfo
    folder = tmp_path / 'STILL'
    folder.mkdir()
    write_gt(str(folder / 'gt.txt'), gt_rows)
    write_results(str(folder / 'det.txt'), det_rows)
    write_seqinfo(str(folder / 'seqinfo.ini'), 'STILL', 30, length, 400, 400)
    return load_sequence(str(folder / 'gt.txt'))


def test_forward_motion_scales_each_box_by_its_own_time_to_contact(tmp_path):
    from edge_tracker.core.mot import ForwardMotion, forward_motion
    # Still objects in a 400x400 image at 30 fps. Near: 100 px high (a quarter of the image),
    # so with contact_s 1 its time to contact is 1 s; far: 50 px high, 2 s.
    near = (190, 150, 20, 100)
    far = (100, 50, 20, 50)
    gt = [(f, 1, *near, 1, 1, 1.0) for f in range(1, 31)] + \
         [(f, 2, *far, 1, 1, 1.0) for f in range(1, 31)]
    # A detection on the near object, and a false positive nearest to it.
    det = [(f, -1, *near, 0.9) for f in range(1, 31)] + \
          [(f, -1, 200, 250, 10, 10, 0.6) for f in range(1, 31)]
    seq = _forward_sequence(tmp_path, gt, det, 30)
    out = forward_motion(seq, 400, 400, ForwardMotion(every=1, contact_s=1.0),
                         str(tmp_path / 'MOVED'), 'MOVED')
    assert (out.name, out.frame_rate, out.length) == ('MOVED', 30.0, 30)
    moved = read_mot(out.gt, 'gt')
    dets = read_mot(out.det, 'det')
    # Frame 1: nothing has moved yet.
    np.testing.assert_allclose(moved.get(1).boxes, [[190, 150, 210, 250], [100, 50, 120, 100]])
    # Frame 16 is 0.5 s later: near is scaled by 1 / (1 - 0.5) = 2 about the centre (200, 200),
    # far by 2 / (2 - 0.5) = 4/3: the near box grows and moves outwards faster.
    f16 = moved.get(16)
    np.testing.assert_allclose(f16.boxes[f16.ids == 1], [[180, 100, 220, 300]], atol=1e-3)
    s = 4 / 3
    np.testing.assert_allclose(f16.boxes[f16.ids == 2],
                               [[200 - 100 * s, 200 - 150 * s, 200 - 80 * s, 200 - 100 * s]],
                               atol=1e-3)
    # Detections move with the gt box they overlap, the false positive with its nearest one.
    np.testing.assert_allclose(dets.get(16).boxes,
                               [[180, 100, 220, 300], [200, 300, 220, 320]], atol=1e-3)
    # Within 0.3 s of contact the near object is gone (frame 22 is 0.7 s in, 23 is 0.733 s).
    assert 1 in moved.get(22).ids and 1 not in moved.get(23).ids
    assert 2 in moved.get(23).ids
    # Its detection goes with it; the false positive follows the far object (s = 2 / 1.267).
    s = 2 / (2 - 22 / 30)
    np.testing.assert_allclose(dets.get(23).boxes, [[200, 200 + 50 * s, 200 + 10 * s,
                                                     200 + 60 * s]], atol=1e-3)


def test_forward_motion_keeps_every_nth_frame_and_drops_what_left_the_view(tmp_path):
    from edge_tracker.core.mot import ForwardMotion, forward_motion
    # A box near the right edge: scaled about the centre it leaves the image for good, even
    # when its original box (walking away, smaller) would bring it back.
    gt = [(f, 1, 360, 180, 30, 100 if f <= 10 else 20, 1, 1, 1.0) for f in range(1, 31)]
    seq = _forward_sequence(tmp_path, gt, [(1, -1, 360, 180, 30, 100, 0.9)], 30)
    out = forward_motion(seq, 400, 400, ForwardMotion(every=3, contact_s=1.0),
                         str(tmp_path / 'MOVED'))
    assert (out.frame_rate, out.length) == (10.0, 10)
    moved = read_mot(out.gt, 'gt')
    # Kept frames 1, 4, 7, 10 ... renumbered 1, 2, 3, 4 ...; the box shifts right each time.
    lefts = [moved.get(f).boxes[0, 0] for f in range(1, 11) if len(moved.get(f))]
    assert lefts[0] == pytest.approx(360) and np.all(np.diff(lefts) > 0)
    # More than half outside (x beyond 400) ends it; frames 11+ (a small box) stay empty.
    assert len(lefts) < 10
    assert all(len(moved.get(f)) == 0 for f in range(5, 11))
    assert len(read_mot(out.det, 'det').get(1)) == 1
