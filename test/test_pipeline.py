"""The pipeline as real processes over real topics: camera -> detector -> tracker."""

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from conftest import shared_video
from edge_tracker.qos import image_qos, notice_qos, results_qos

RANDOM_MODEL = {'model': 'yolov8n.yaml', 'imgsz': 320, 'threads': 1}


def header_key(header):
    return (header.stamp.sec, header.stamp.nanosec, header.frame_id)


def diagnostic_status(arrays, node_name):
    """(array, key/values) of the newest status whose name starts with `node_name`, or None."""
    for array in reversed(arrays):
        for status in array.status:
            if status.name.split(':')[0].split('/')[-1] == node_name:
                return array, {kv.key: kv.value for kv in status.values}
    return None


def diagnostic_values(arrays, node_name):
    """Key/values of the newest status whose name starts with `node_name`."""
    found = diagnostic_status(arrays, node_name)
    return found[1] if found else None


def test_camera_detector_tracker_processes(spinner, processes):
    fps = 10.0
    # Reliable images so that this test sees every frame the tracker may answer.
    processes.start('camera_node', {'source': 'synthetic', 'fps': fps, 'frame_id': 'cam0',
                                    'reliability': 'reliable', 'depth': 5})
    processes.start('detector_node', RANDOM_MODEL)
    processes.start('tracker_node')
    images = spinner.collect(Image, 'image_raw', image_qos('reliable', 20))
    tracks = spinner.collect(Detection2DArray, 'tracks', results_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    spinner.until(lambda: len(tracks) >= 3 and len(images) >= 3, 90,
                  'the first tracks (model load included)')

    def tracker_image_subscribers():
        return [i for i in spinner.node.get_subscriptions_info_by_topic('image_raw')
                if i.node_name == 'tracker']

    # Nobody wants annotated_image yet: the tracker does not even take images.
    assert tracker_image_subscribers() == []

    n_images, n_tracks, t0 = len(images), len(tracks), time.monotonic()
    spinner.spin_for(5.0)
    span = time.monotonic() - t0
    image_rate = (len(images) - n_images) / span
    track_rate = (len(tracks) - n_tracks) / span
    assert image_rate > 0.7 * fps, f'camera published {image_rate:.1f} Hz, asked {fps}'
    assert track_rate >= 0.8 * image_rate, f'tracks {track_rate:.1f} Hz vs images {image_rate:.1f}'

    image_headers = {header_key(m.header) for m in images}
    first_image = min(header_key(m.header) for m in images)
    later = [m for m in tracks[n_tracks:] if header_key(m.header) >= first_image]
    unmatched = [header_key(m.header) for m in later if header_key(m.header) not in image_headers]
    stamps = sorted(header_key(m.header) for m in images)
    assert not unmatched, f'tracks headers that no image had: {unmatched[:3]} ' \
        f'({len(unmatched)} of {len(later)}; images from {stamps[0]} to {stamps[-1]})'
    assert all(m.header.frame_id == 'cam0' for m in later)
    values = diagnostic_values(diags, 'tracker')
    assert values is not None and float(values['annotated_rate_hz']) == 0.0

    annotated = spinner.collect(Image, 'annotated_image', image_qos())
    spinner.until(lambda: len(annotated) >= 5, 20, 'annotated_image after subscribing')
    assert len(tracker_image_subscribers()) == 1
    assert all(header_key(m.header) in {header_key(i.header) for i in images} for m in annotated)
    assert annotated[0].encoding == 'bgr8' and annotated[0].width == 640


def _crossing_boxes(frame):
    """Three 60x60 objects: two crossing horizontally (offset in y), one vertically."""
    t = frame
    return [
        ('circle', 40 + 5 * t, 200),
        ('square', 560 - 5 * t, 230),
        ('triangle', 300, 20 + 4 * t),
    ]


def _detections_msg(frame, stamp_s, boxes):
    msg = Detection2DArray()
    msg.header.frame_id = 'cam'
    msg.header.stamp.sec = int(stamp_s)
    msg.header.stamp.nanosec = int((stamp_s % 1) * 1e9)
    for name, cx, cy in boxes:
        d = Detection2D()
        d.header = msg.header
        d.bbox.center.position.x = float(cx)
        d.bbox.center.position.y = float(cy)
        d.bbox.size_x = d.bbox.size_y = 60.0
        h = ObjectHypothesisWithPose()
        h.hypothesis.class_id = name
        h.hypothesis.score = 0.9
        d.results.append(h)
        msg.detections.append(d)
    return msg


def tracker_fed_by_test(spinner, processes):
    """A tracker process whose detections this test publishes: (publisher, tracks received),
    once both ends are connected."""
    processes.start('tracker_node', {'frame_rate': 30.0})
    pub = spinner.node.create_publisher(Detection2DArray, 'detections', results_qos())
    tracks = spinner.collect(Detection2DArray, 'tracks', results_qos())
    spinner.until(lambda: pub.get_subscription_count() > 0, 30, 'the tracker to subscribe')
    spinner.until(lambda: spinner.node.count_publishers('tracks') > 0, 30, 'tracks publisher')
    return pub, tracks


def test_tracker_keeps_three_ids_while_objects_cross(spinner, processes):
    pub, tracks = tracker_fed_by_test(spinner, processes)
    spinner.spin_for(0.5)
    start = 1000.0
    for frame in range(100):
        pub.publish(_detections_msg(frame, start + frame / 30.0, _crossing_boxes(frame)))
        spinner.spin_for(1 / 30.0)
    spinner.until(lambda: len(tracks) >= 100, 20, '100 tracks messages')

    ids_by_class = {}
    for msg in tracks[2:]:  # a track gets its id on its second match
        assert len(msg.detections) == 3, f'{len(msg.detections)} tracks at {msg.header.stamp}'
        for d in msg.detections:
            ids_by_class.setdefault(d.results[0].hypothesis.class_id, set()).add(d.id)
    assert sorted(ids_by_class) == ['circle', 'square', 'triangle']
    assert all(len(ids) == 1 for ids in ids_by_class.values()), ids_by_class
    assert len({next(iter(v)) for v in ids_by_class.values()}) == 3


def test_two_tracker_nodes_in_one_process_have_their_own_ids(spinner):
    from edge_tracker.nodes.tracker_node import TrackerNode
    nodes = [TrackerNode(namespace=ns) for ns in ('left', 'right')]
    try:
        for node in nodes:
            spinner.executor.add_node(node)
        outs = {ns: spinner.collect(Detection2DArray, f'/{ns}/tracks') for ns in ('left', 'right')}
        pubs = {ns: spinner.node.create_publisher(Detection2DArray, f'/{ns}/detections', 10)
                for ns in ('left', 'right')}
        spinner.until(lambda: all(p.get_subscription_count() for p in pubs.values()), 10,
                      'both trackers to subscribe')
        for frame in range(5):
            for ns, pub in pubs.items():
                pub.publish(_detections_msg(frame, 50 + frame / 30, _crossing_boxes(frame)))
            spinner.spin_for(0.05)
        spinner.until(lambda: all(len(v) >= 5 for v in outs.values()), 10, 'tracks from both')
        ids = {ns: sorted(d.id for d in out[-1].detections) for ns, out in outs.items()}
        assert ids['left'] == ids['right'] == ['0', '1', '2']
    finally:
        for node in nodes:
            spinner.executor.remove_node(node)
            node.destroy_node()


def _tracker_fed_by_hand(spinner, namespace, **params):
    """A TrackerNode on the test's executor, and publishers of its detections and frame
    announcements, once it subscribes: (node, tracks received, detections pub, in_flight pub)."""
    from rclpy.parameter import Parameter
    from std_msgs.msg import Header
    from edge_tracker.nodes.tracker_node import TrackerNode
    node = TrackerNode(namespace=namespace, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    spinner.executor.add_node(node)
    try:
        tracks = spinner.collect(Detection2DArray, f'/{namespace}/tracks', results_qos())
        dets = spinner.node.create_publisher(Detection2DArray, f'/{namespace}/detections',
                                             results_qos())
        in_flight = spinner.node.create_publisher(
            Header, f'/{namespace}/detections/in_flight', notice_qos())
        spinner.until(lambda: dets.get_subscription_count()
                      and in_flight.get_subscription_count(), 10, 'the tracker to subscribe')
    except BaseException:
        _remove(spinner, node)
        raise
    return node, tracks, dets, in_flight


def _remove(spinner, node):
    spinner.executor.remove_node(node)
    node.destroy_node()


def test_tracker_deadline_timer_answers_a_frame_whose_detections_never_come(spinner):
    node, tracks, dets, in_flight = _tracker_fed_by_hand(spinner, 'deadline')
    try:
        timer = node.deadline_timer
        assert timer.is_canceled(), 'nothing waits yet: no timer'
        for frame in range(3):
            dets.publish(_detections_msg(frame, 70 + frame / 30, _crossing_boxes(frame)))
        spinner.until(lambda: len(tracks) >= 3, 10, 'tracks for the measured frames')
        # A frame under way whose detections never come: the timer answers it once its wait
        # is over (predicted, its header kept), then nothing waits and the timer stops.
        lost = _detections_msg(3, 70 + 3 / 30, []).header
        in_flight.publish(lost)
        spinner.until(lambda: not timer.is_canceled(), 5, 'the timer armed for the frame')
        spinner.until(lambda: len(tracks) >= 4, 5, 'the frame answered at its deadline')
        assert header_key(tracks[3].header) == header_key(lost)
        assert len(tracks[3].detections) == 3  # the three tracks, predicted
        spinner.spin_for(0.2)
        assert timer.is_canceled(), 'the timer keeps firing while no frame waits'
        assert len(tracks) == 4
    finally:
        _remove(spinner, node)


def test_tracker_takes_detections_seconds_late_without_restarting_or_reordering(spinner):
    """A detector slowed to seconds per frame (a loaded machine) answers a frame long after
    its tracks went out predicted, further back than a replay restart: the tracks stay in
    stamp order and keep their ids."""
    node, tracks, dets, in_flight = _tracker_fed_by_hand(
        spinner, 'slow', lost_track_buffer=60, max_wait_s=0.1)
    try:
        assert node.tracker.rewind_s == 2.0
        for frame in range(3):
            dets.publish(_detections_msg(frame, 70 + frame / 30, _crossing_boxes(frame)))
        spinner.until(lambda: len(tracks) >= 3, 10, 'tracks for the measured frames')
        ids = sorted(d.id for d in tracks[-1].detections)
        # Frame 3 goes in flight and is answered predicted at its deadline; then 3 s of frames.
        slow = _detections_msg(3, 70 + 3 / 30, _crossing_boxes(3))
        in_flight.publish(slow.header)
        spinner.until(lambda: len(tracks) >= 4, 5, 'the frame in flight answered at its deadline')
        for frame in range(4, 94):        # (one by one: the results QoS keeps the last 10)
            dets.publish(_detections_msg(frame, 70 + frame / 30, _crossing_boxes(frame)))
            spinner.until(lambda: len(tracks) > frame, 5, f'tracks for frame {frame}')
        dets.publish(slow)                # its detections, 3 s after the newest frame's stamp
        spinner.until(lambda: node.late_detections == 1, 5, 'the late detections taken')
        dets.publish(_detections_msg(94, 70 + 94 / 30, _crossing_boxes(94)))
        spinner.until(lambda: len(tracks) >= 94, 5, 'the next frame tracked')
        stamps = [header_key(m.header)[:2] for m in tracks]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps) == 94
        assert node.sequencer.rewinds == 0 and node.tracker.rewinds == 0
        assert sorted(d.id for d in tracks[-1].detections) == ids
    finally:
        _remove(spinner, node)


def test_detector_under_load_works_on_the_newest_frame(spinner, processes):
    processes.start('camera_node', {'source': 'synthetic', 'fps': 60.0})
    processes.start('detector_node', {'model': 'yolov8n.yaml', 'imgsz': 640, 'threads': 1})
    arrivals = []
    spinner.node.create_subscription(
        Detection2DArray, 'detections',
        lambda m: arrivals.append((time.time(), m.header.stamp.sec + m.header.stamp.nanosec * 1e-9)),
        results_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    spinner.until(lambda: len(arrivals) >= 5, 90, 'the first detections')
    n0 = len(arrivals)
    spinner.spin_for(6.0)
    ages = np.array([now - stamp for now, stamp in arrivals[n0:]])
    values = diagnostic_values(diags, 'detector')
    infer_ms = float(values['inference_mean_ms'])
    assert infer_ms > 30, 'this test needs inference slower than the camera period'
    assert int(values['dropped_frames']) > 0, 'a 60 Hz camera and a slow model must drop frames'
    # Newest wins: a published result is at most ~one inference older than its frame's wait.
    limit = 2.5 * infer_ms / 1e3 + 0.05
    assert np.percentile(ages, 95) < limit, f'age p95 {np.percentile(ages, 95):.3f}s > {limit:.3f}s'
    half = len(ages) // 2
    assert ages[half:].mean() < ages[:half].mean() + 0.5 * infer_ms / 1e3, 'backlog growing'


def _short_clip(src, dst, frames):
    import cv2
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    writer = None
    for _ in range(frames):
        ok, frame = cap.read()
        assert ok
        if writer is None:
            h, w = frame.shape[:2]
            writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*'MJPG'), fps, (w, h))
        writer.write(frame)
    writer.release()
    cap.release()
    return fps


def test_camera_plays_a_file_at_its_rate_and_loops(spinner, processes, tmp_path):
    clip = tmp_path / 'clip.avi'
    fps = _short_clip(shared_video('car-detection.mp4'), clip, 15)
    assert abs(fps - 12.5) < 0.1
    images = spinner.collect(Image, 'image_raw', image_qos())
    looping = processes.start('camera_node', {'source': str(clip), 'loop': True})
    spinner.until(lambda: len(images) >= 3, 30, 'frames from the file')
    n0, t0 = len(images), time.monotonic()
    spinner.spin_for(3.0)  # 15 frames last 1.2 s: this window spans loops
    rate = (len(images) - n0) / (time.monotonic() - t0)
    assert abs(rate - 12.5) < 2.0, f'played at {rate:.1f} Hz instead of 12.5'
    assert (images[-1].width, images[-1].height) == (768, 432)
    assert looping.alive()
    assert looping.stop() == 0

    # Long enough (3.2 s) for this test's subscription to be matched before it ends.
    longer = tmp_path / 'longer.avi'
    _short_clip(shared_video('car-detection.mp4'), longer, 40)
    once = spinner.collect(Image, 'image_raw', image_qos())
    single = processes.start('camera_node', {'source': str(longer), 'loop': False},
                             name='camera_once')
    spinner.until(lambda: single.popen.poll() is not None, 30, 'the camera to stop at the end')
    assert single.popen.returncode == 0, single.log()
    assert 'after 40 frames' in single.log()
    assert 0 < len(once) <= 40
