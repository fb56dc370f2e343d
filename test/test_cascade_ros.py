"""The cascade's deeper stage across processes: a real detector_node with the project's model
runs it only on the frames whose quick boxes trigger it, publishes the refinement after the quick
detections, and stops it first when warm; a real tracker_node applies refinements by the rule
README documents."""

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image
from std_msgs.msg import Header, UInt8
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from conftest import REPO
from edge_tracker.conversions import ImageWriter
from edge_tracker.core.synthetic import SyntheticScene
from edge_tracker.qos import image_qos, latched_qos, results_qos

SHAPES = str(REPO / 'models' / 'edge_tracker_shapes.pt')


def _status(arrays, node_name, task):
    """Key/values of the newest status `<node_name>: <task>`."""
    for array in reversed(arrays):
        for status in array.status:
            node, _, name = status.name.partition(': ')
            if node.split('/')[-1] == node_name and name == task:
                return {kv.key: kv.value for kv in status.values}, status.message
    return None, None


def _stamp(header):
    return (header.stamp.sec, header.stamp.nanosec)


def _classes(msg):
    return {d.results[0].hypothesis.class_id for d in msg.detections}


def test_the_deeper_stage_runs_only_on_triggering_frames_and_stops_first_when_warm(
        spinner, processes):
    detector = processes.start('detector_node', {
        'model': SHAPES, 'imgsz': 320, 'workers': 1, 'threads': 1, 'reliability': 'reliable',
        'deep_model': SHAPES, 'deep_imgsz': 320, 'deep_window': 320,
        'deep_classes': ['circle'], 'warm_frame_skip': 1})
    images = spinner.node.create_publisher(Image, 'image_raw', image_qos('reliable', 5))
    throttle = spinner.node.create_publisher(UInt8, 'thermal/throttle', latched_qos())
    quick = spinner.collect(Detection2DArray, 'detections', results_qos())
    refined = spinner.collect(Detection2DArray, 'detections/refined', results_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    spinner.until(lambda: images.get_subscription_count() > 0 and
                  _status(diags, 'detector', 'cascade')[0] is not None, 120,
                  'the detector with its deeper stage loaded')
    scene = SyntheticScene(640, 480, seed=3)
    blank = np.full((480, 640, 3), 110, np.uint8)
    writer = ImageWriter()
    sent = []

    def send(frame):
        header = Header(frame_id='cam')
        header.stamp.sec = len(sent) + 1
        sent.append(_stamp(header))
        images.publish(writer.write(frame, header))
        key = sent[-1]
        spinner.until(lambda: any(_stamp(m.header) == key for m in quick), 60,
                      f'quick detections of frame {key[0]}')
        mine = next(m for m in quick if _stamp(m.header) == key)
        return mine

    # Normal temperature: scene frames (some with a circle) and blank ones, one at a time.
    triggering = []
    for k in range(12):
        msg = send(blank if k % 3 == 2 else scene.render(10 * k))
        if 'circle' in _classes(msg):
            triggering.append(_stamp(msg.header))
            key = triggering[-1]
            spinner.until(lambda: any(_stamp(m.header) == key for m in refined), 60,
                          f'the refinement of triggering frame {key[0]}')
    normal_frames = len(sent)
    assert 3 <= len(triggering) <= normal_frames - 4, \
        f'{len(triggering)} of {normal_frames} frames had a circle: the test needs both kinds'
    spinner.until(lambda: (_status(diags, 'detector', 'cascade')[0] or {}).get('quick_runs')
                  == str(normal_frames), 30, 'diagnostics of every frame')
    values, message = _status(diags, 'detector', 'cascade')
    assert [_stamp(m.header) for m in refined] == triggering   # only those, each once
    assert values['deep_runs'] == str(len(triggering))
    assert values['triggered_frames'] == str(len(triggering))
    assert values['deep_stopped_frames'] == '0' and message == 'deeper stage on'
    assert int(values['crops']) >= len(triggering)
    assert float(values['deep_mean_ms']) > 0
    changed = sum(int(values[k]) for k in ('boxes_confirmed', 'boxes_added', 'boxes_removed'))
    assert changed > 0
    # The refined boxes say their stage; the quick detections carry no id.
    stages = {d.id for m in refined for d in m.detections}
    assert stages and stages <= {'quick', 'confirmed', 'added', 'removed'}
    assert all(d.id == '' for m in quick for d in m.detections)

    # Warm: the deeper stage stops; the quick stage still runs on every frame
    # (warm_frame_skip 1, so stopping it is all that warm does).
    throttle.publish(UInt8(data=1))
    spinner.until(lambda: (_status(diags, 'detector', 'cascade')[1] or '').startswith(
        'deeper stage stopped'), 30, 'the governor stopping the deeper stage')
    warm_triggering = 0
    for k in range(6):
        msg = send(scene.render(10 * k))
        warm_triggering += 'circle' in _classes(msg)
    assert warm_triggering >= 2
    spinner.until(lambda: (_status(diags, 'detector', 'cascade')[0] or {}).get('quick_runs')
                  == str(len(sent)), 30, 'diagnostics of the warm frames')
    spinner.spin_for(1.0)   # a refinement would have come by now
    values, _ = _status(diags, 'detector', 'cascade')
    assert values['deep_runs'] == str(len(triggering)), 'the deeper stage ran while warm'
    assert values['deep_stopped_frames'] == str(warm_triggering)
    assert len(refined) == len(triggering)
    inference, _ = _status(diags, 'detector', 'inference')
    assert inference['effective_frame_skip'] == '1' and inference['throttle_level'] == '1'

    # Cool again: it resumes.
    throttle.publish(UInt8(data=0))
    spinner.until(lambda: (_status(diags, 'detector', 'cascade')[1] or '') ==
                  'deeper stage on', 30, 'the deeper stage back on')
    for k in range(6):
        msg = send(scene.render(10 * k))
        if 'circle' in _classes(msg):
            key = _stamp(msg.header)
            spinner.until(lambda: any(_stamp(m.header) == key for m in refined), 60,
                          'a refinement after cooling')
            break
    else:
        raise AssertionError('no triggering frame after cooling')
    assert detector.alive()


def _array(stamp_ns, boxes, ids=None):
    msg = Detection2DArray()
    msg.header.frame_id = 'cam'
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10 ** 9)
    for i, (cx, cy, size, score) in enumerate(boxes):
        d = Detection2D()
        d.header = msg.header
        d.bbox.center.position.x, d.bbox.center.position.y = float(cx), float(cy)
        d.bbox.size_x = d.bbox.size_y = float(size)
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id, hyp.hypothesis.score = 'circle', float(score)
        d.results.append(hyp)
        if ids is not None:
            d.id = ids[i]
        msg.detections.append(d)
    return msg


def test_the_tracker_applies_a_refinement_to_its_frame_then_carries_it_briefly(
        spinner, processes):
    # No camera_info: the detections define the frames, answered as they arrive.
    processes.start('tracker_node', {'refined_max_age_s': 0.1})
    dets = spinner.node.create_publisher(Detection2DArray, 'detections', results_qos())
    ref = spinner.node.create_publisher(Detection2DArray, 'detections/refined', results_qos())
    tracks = spinner.collect(Detection2DArray, 'tracks', results_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    spinner.until(lambda: dets.get_subscription_count() > 0 and ref.get_subscription_count() > 0,
                  30, 'the tracker')
    weak = (100, 100, 20, 0.3)            # below the activation threshold: starts no track
    sec = 10 ** 9

    def frame(stamp_ns, boxes):
        before = len(tracks)
        dets.publish(_array(stamp_ns, boxes))
        spinner.until(lambda: len(tracks) > before, 30, f'tracks of {stamp_ns}')
        return tracks[-1]

    # Quick only: the weak box starts no track.
    assert len(frame(1 * sec, [weak]).detections) == 0
    # The refinement of frame 2 s arrives before its quick detections are tracked: the frame is
    # tracked with the refined boxes (the weak box confirmed at 0.8, a missed one added).
    ref.publish(_array(2 * sec, [(101, 100, 20, 0.8), (300, 200, 16, 0.7)],
                       ids=['confirmed', 'added']))
    spinner.until(lambda: (_status(diags, 'tracker', 'tracking')[0] or {}).get('input_rate_hz')
                  is not None, 30, 'tracker diagnostics')
    spinner.spin_for(0.5)
    out = frame(2 * sec, [weak])
    assert sorted(round(d.bbox.center.position.x) for d in out.detections) == [101, 300]
    # 50 ms later (within refined_max_age_s): the added box is still merged in.
    out = frame(2 * sec + 50_000_000, [weak])
    assert sorted(round(d.bbox.center.position.x) for d in out.detections) == [100, 300]
    # Later than that: expired. The weak box continues its (now confirmed) track; the added
    # object, which the quick stage does not see, is no longer tracked.
    out = frame(2 * sec + 300_000_000, [weak])
    assert [round(d.bbox.center.position.x) for d in out.detections] == [100]
    spinner.until(lambda: (_status(diags, 'tracker', 'tracking')[0] or {}).get(
        'refined_expired') == '1', 30, 'the refinement counted')
    values, _ = _status(diags, 'tracker', 'tracking')
    assert values['refined_same_frame'] == '1' and values['refined_carried_over'] == '1'
