"""The detector's live `enabled` parameter and the tracker's ~/reset service, as real processes."""

from sensor_msgs.msg import CameraInfo
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2DArray

from edge_tracker.qos import image_qos, results_qos
from test_compressed import SHAPES_MODEL, _subscribers
from test_faults import set_parameters
from test_pipeline import _detections_msg, tracker_fed_by_test


def _predicted(msg):
    return [d for d in msg.detections if d.header.stamp != msg.header.stamp]


def test_detector_enabled_false_stops_inference_and_true_resumes(spinner, processes):
    processes.start('camera_node', {'source': 'synthetic', 'fps': 10.0})
    processes.start('detector_node', dict(SHAPES_MODEL, conf=0.4))
    # 2 s of lost-track buffer: long enough to see the predictions before the tracks empty.
    processes.start('tracker_node', {'lost_track_buffer': 60, 'frame_rate': 30.0})
    tracks = spinner.collect(Detection2DArray, 'tracks', results_qos())
    detections = spinner.collect(Detection2DArray, 'detections', results_qos())
    frames = spinner.collect(CameraInfo, 'camera_info', image_qos(depth=5))
    spinner.until(lambda: sum(len(m.detections) > 0 and not _predicted(m) for m in tracks) >= 5,
                  120, 'measured tracks (model load included)')
    assert len(_subscribers(spinner, '/image_raw', 'detector')) == 1

    assert set_parameters(spinner, 'detector', enabled=False)[0].successful
    spinner.until(lambda: not _subscribers(spinner, '/image_raw', 'detector'), 10,
                  'the detector to drop its image subscription')
    # Graph changes reach this process by discovery: wait for them, never assume them.
    spinner.until(lambda: len(_subscribers(spinner, '/camera_info', 'detector')) == 1, 10,
                  'the detector to follow camera_info instead')
    spinner.spin_for(0.5)  # an inference under way may still finish
    n_detections, n_settled, n_frames = len(detections), len(tracks), len(frames)
    spinner.spin_for(4.0)
    assert len(detections) == n_detections, 'detections kept coming while disabled'
    disabled = tracks[n_settled:]
    camera = len(frames) - n_frames
    assert camera >= 20 and len(disabled) >= 0.8 * camera, \
        f'{len(disabled)} tracks messages for {camera} camera frames while disabled'
    # Camera rate goes on: first the tracks' predictions, then nothing once they are lost.
    with_boxes = [m for m in disabled if m.detections]
    assert with_boxes and all(len(_predicted(m)) == len(m.detections) for m in with_boxes)
    assert all(not m.detections for m in disabled[-10:]), 'tracks did not empty'

    assert set_parameters(spinner, 'detector', enabled=True)[0].successful
    spinner.until(lambda: len(_subscribers(spinner, '/image_raw', 'detector')) == 1, 10,
                  'the image subscription back')
    spinner.until(lambda: not _subscribers(spinner, '/camera_info', 'detector'), 10,
                  'the detector to drop camera_info again')
    n_back = len(tracks)
    spinner.until(lambda: len(detections) > n_detections
                  and any(m.detections and not _predicted(m) for m in tracks[n_back:]), 30,
                  'measured tracks again after enabled: true')


def _call_reset(spinner):
    client = spinner.node.create_client(Trigger, '/tracker/reset')
    spinner.until(client.service_is_ready, 30, '/tracker/reset')
    future = client.call_async(Trigger.Request())
    spinner.until(future.done, 10, 'the answer of /tracker/reset')
    spinner.node.destroy_client(client)
    return future.result()


def test_tracker_reset_forgets_tracks_and_restarts_ids(spinner, processes):
    pub, tracks = tracker_fed_by_test(spinner, processes)
    start = 100.0
    for frame in range(10):
        pub.publish(_detections_msg(frame, start + frame / 30, [
            ('circle', 100 + 3 * frame, 100), ('square', 300, 100), ('triangle', 500, 300)]))
        spinner.spin_for(1 / 30)
    spinner.until(lambda: len(tracks) >= 10, 20, '10 tracks messages')
    assert sorted(d.id for d in tracks[-1].detections) == ['0', '1', '2']

    result = _call_reset(spinner)
    assert result.success and result.message == 'forgot 3 tracks'

    # Two new objects, later stamps: without the reset they would get ids 3 and 4.
    n0 = len(tracks)
    for frame in range(10, 20):
        pub.publish(_detections_msg(frame, start + frame / 30, [
            ('square', 150, 350), ('circle', 400, 400)]))
        spinner.spin_for(1 / 30)
    spinner.until(lambda: len(tracks) >= n0 + 10, 20, 'tracks after the reset')
    after = tracks[n0:]
    # The old tracks are gone at once (not even predicted), the new ones count from 0.
    assert all(len(m.detections) <= 2 for m in after)
    assert {d.id for m in after for d in m.detections} == {'0', '1'}
    assert {(d.results[0].hypothesis.class_id, d.id) for d in after[-1].detections} == \
        {('square', '0'), ('circle', '1')}
