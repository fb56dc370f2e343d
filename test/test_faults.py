"""Reliability: faults, bad input and shutdown, one test per fault, against the real executables
(core-level only where a process cannot reproduce the fault on demand).

Each test checks that the node survives (alive, publishing again where recovery is expected) or
ends the documented way: exit code 2 and one FATAL line saying what to fix, never a traceback.
Zone files that vanish or hold garbage are covered by test_thermal_node.py.
"""

import os
import re
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from edge_tracker.core.sources import KIND_STREAM, CaptureLoop, SourceError, SourceSpec
from edge_tracker.core.synthetic import SyntheticScene
from edge_tracker.qos import image_qos, results_qos
from test_pipeline import RANDOM_MODEL

ERROR, WARN = b'\x02', b'\x01'


# ----------------------------------------------------------------------------- helpers

def statuses(arrays, node):
    """DiagnosticStatus entries of `node` (its fully qualified name without the leading /)."""
    return [s for a in arrays for s in a.status if s.name.split(':')[0] == node]


def values(status):
    return {kv.key: kv.value for kv in status.values}


def fatal_lines(log):
    return [line for line in log.splitlines() if '[FATAL]' in line]


def assert_clean_log(proc):
    log = proc.log()
    assert 'Traceback' not in log, log[-4000:]
    assert 'terminate called' not in log, log[-4000:]


def stamp_of(msg):
    return (msg.header.stamp.sec, msg.header.stamp.nanosec)


def set_parameters(spinner, node, **params):
    """Calls /<node>/set_parameters with `params`; returns the SetParametersResult list."""
    client = spinner.node.create_client(SetParameters, f'/{node}/set_parameters')
    spinner.until(client.service_is_ready, 60, f'/{node}/set_parameters')
    request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()
                                                for name, value in params.items()])
    # A service answers a client whose response reader it has not matched yet by dropping the
    # answer ("failed to send response (timeout)", seen on a loaded machine right after the
    # node started): ask again. Setting the same values twice changes nothing.
    for _ in range(4):
        future = client.call_async(request)
        end = time.monotonic() + 5.0
        while not future.done() and time.monotonic() < end:
            spinner.spin_for(0.05)
        if future.done():
            break
    spinner.until(future.done, 5, f'the answer of /{node}/set_parameters')
    spinner.node.destroy_client(client)
    return future.result().results


def image_msg(array, encoding, stamp_s, frame_id='cam'):
    msg = Image()
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), int(stamp_s % 1 * 1e9)
    msg.height, msg.width = array.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = array.shape[1] * (array.shape[2] if array.ndim == 3 else 1) * array.itemsize
    msg.data = np.ascontiguousarray(array).tobytes()
    return msg


def scene_frame(width=320, height=240):
    return SyntheticScene(width, height, seed=3).render(10)


class MjpegServer:
    """A network camera on 127.0.0.1 (HTTP multipart JPEG, what many IP cameras serve) that can
    be unplugged: while offline, the running stream is cut and new requests get a 503."""

    def __init__(self, fps=15.0):
        self.online = threading.Event()
        self.online.set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if not server.online.is_set():
                    self.send_error(503, 'camera unplugged')
                    return
                self.send_response(200)
                self.send_header('Content-Type', 'multipart/x-mixed-replace; boundary=frame')
                self.end_headers()
                image = np.zeros((120, 160, 3), np.uint8)
                i = 0
                try:
                    while server.online.is_set():
                        image[:] = (i * 7) % 255
                        jpeg = cv2.imencode('.jpg', image)[1].tobytes()
                        self.wfile.write(b'--frame\r\nContent-Type: image/jpeg\r\n'
                                         b'Content-Length: %d\r\n\r\n' % len(jpeg)
                                         + jpeg + b'\r\n')
                        i += 1
                        time.sleep(1.0 / fps)
                except OSError:
                    pass  # the client went away

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}/video.mjpg'
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.online.clear()
        self.httpd.shutdown()
        self.httpd.server_close()


# ----------------------------------------------------------------------------- camera

def test_camera_device_missing_at_start_retries_with_backoff(spinner, processes):
    device = '/dev/video9'
    assert not os.path.exists(device)
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    camera = processes.start('camera_node', {'source': device})
    spinner.until(lambda: len(statuses(diags, 'camera')) >= 8, 30, '8 s of camera diagnostics')
    assert camera.alive(), camera.log()

    seen = statuses(diags, 'camera')
    seen = seen[next(i for i, s in enumerate(seen) if s.level == ERROR):]  # after 'starting'
    assert len(seen) >= 6 and all(s.level == ERROR for s in seen), \
        [(s.level, s.message) for s in seen]
    assert all(f'camera device {device} does not exist' in s.message for s in seen), seen[-1]
    assert values(seen[-1])['state'] == 'retrying'
    assert values(seen[-1])['frames'] == '0'
    delays = [float(re.search(r'retrying in ([\d.]+) s', s.message).group(1)) for s in seen]
    assert delays == sorted(delays), f'backoff must not shrink while failing: {delays}'
    # Growing by doubling; the first (0.5, 1, 2 s) may go by before this listener is matched.
    assert max(delays) >= 4.0 and max(delays) >= 2 * min(delays), \
        f'no exponential backoff: {delays}'
    assert max(delays) <= 8.0, f'backoff beyond its cap: {delays}'

    log = camera.log()
    assert '[ERROR]' in log and f'camera device {device} does not exist (unplugged?)' in log
    # Throttled: not one line per retry.
    assert log.count('does not exist') <= 3, log
    assert_clean_log(camera)
    assert camera.stop(signal.SIGINT) == 0


def test_camera_stream_lost_while_running_recovers(spinner, processes):
    server = MjpegServer()
    try:
        images = spinner.collect(Image, 'image_raw', image_qos())
        diags = spinner.collect(DiagnosticArray, '/diagnostics')
        camera = processes.start('camera_node', {'source': server.url})
        spinner.until(lambda: len(images) >= 10, 40, 'frames from the network camera')

        server.online.clear()  # unplugged: the stream is cut, reconnects are refused
        t_lost = time.monotonic()
        spinner.until(lambda: time.monotonic() - t_lost > 1.5 and statuses(diags, 'camera')
                      and statuses(diags, 'camera')[-1].level != b'\x00', 30,
                      'the camera to report the lost stream')
        spinner.spin_for(4.0)  # let it fail to reconnect a few times
        n_lost = len(images)
        spinner.spin_for(1.0)
        assert len(images) == n_lost, 'frames while the camera is unplugged?'
        problems = {s.message for s in statuses(diags, 'camera') if s.level != b'\x00'}
        assert any('no frame from' in m and 'reopening' in m for m in problems) or \
            any('cannot open stream source' in m for m in problems), problems
        assert camera.alive(), camera.log()

        server.online.set()  # plugged back in
        spinner.until(lambda: len(images) >= n_lost + 10, 40, 'frames after the camera returns')
        spinner.until(lambda: values(statuses(diags, 'camera')[-1]).get('state') == 'streaming'
                      and int(values(statuses(diags, 'camera')[-1])['reconnects']) >= 1, 10,
                      'diagnostics to show the reconnection')
        assert statuses(diags, 'camera')[-1].level == b'\x00'
        assert camera.alive()
        assert_clean_log(camera)
    finally:
        server.close()


def test_stalled_stream_is_reopened_and_resumes():
    """Core level: a source whose read() starts returning None (a stream that stalls), then
    cannot be reopened twice (still gone), then delivers again."""

    class FakeStream:
        def __init__(self, frames):
            self.frames = frames   # frames delivered before it stalls (None: never stalls)
            self.reads = 0
            self.released = False
            self.ended = False
            self.nominal_fps = 100.0

        def read(self):
            self.reads += 1
            if self.frames is not None and self.reads > self.frames:
                return None
            return np.full((4, 4, 3), self.reads % 255, np.uint8)

        def release(self):
            self.released = True

    opened, attempts = [], []
    plan = ['ok-then-stall', 'gone', 'gone', 'ok']

    def opener(spec, *args):
        step = plan[min(len(attempts), len(plan) - 1)]
        attempts.append((time.monotonic(), step))
        if step == 'gone':
            raise SourceError(f'cannot open stream source {spec.display}')
        opened.append(FakeStream(20 if step == 'ok-then-stall' else None))
        return opened[-1]

    events = []
    frames = []
    loop = None

    def on_status(level, message):
        events.append((level, message, loop.state))

    spec = SourceSpec(KIND_STREAM, 'rtsp://admin:hunter2@10.0.0.9/live')
    loop = CaptureLoop(spec, on_frame=lambda f: frames.append(int(f[0, 0, 0])),
                       on_status=on_status, on_end=lambda: events.append(('end', '', '')),
                       stall_timeout_s=0.3, backoff_min_s=0.1, backoff_max_s=1.0,
                       opener=opener)
    loop.start()
    try:
        deadline = time.monotonic() + 20
        while not (len(opened) == 2 and opened[1].reads > 30) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        assert loop.stop(), 'capture thread did not stop'

    assert len(opened) == 2, events
    assert opened[0].released, 'the stalled source was not released before reopening'
    stalls = [e for e in events if e[0] == 'warn']
    assert len(stalls) == 1 and stalls[0][2] == 'stalled', events
    assert 'no frame from rtsp://***@10.0.0.9/live' in stalls[0][1] and \
        'reopening' in stalls[0][1]
    retries = [e for e in events if e[0] == 'error']
    assert [re.search(r'retrying in ([\d.]+) s', e[1]).group(1) for e in retries] == \
        ['0.1', '0.2'], retries
    gaps = np.diff([t for t, _ in attempts[1:]])
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19, f'backoff not waited: {gaps}'
    assert events[-1][0] == 'ok' and events[-1][2] == 'streaming'
    assert loop.reconnects == 1
    assert len(frames) >= 20 + 30, 'no frames after the stream came back'
    assert all('hunter2' not in e[1] for e in events), events


def _video(path, frames=30, size=(320, 240)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 25.0, size)
    scene = SyntheticScene(*size, seed=1)
    for i in range(frames):
        writer.write(scene.render(i))
    writer.release()
    return path.read_bytes()


def test_camera_corrupt_files_give_a_clear_error_and_no_traceback(spinner, processes, tmp_path):
    garbage = tmp_path / 'garbage.mp4'
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 300_000, np.uint8).tobytes())
    data = _video(tmp_path / 'full.avi', frames=60)
    truncated = tmp_path / 'truncated.avi'
    truncated.write_bytes(data[:len(data) // 3])   # cut mid-frame, no index at the end
    scrambled = tmp_path / 'scrambled.avi'          # valid header, noise in the frame data
    noisy = bytearray(data)
    noisy[4096:] = np.random.default_rng(1).integers(0, 256, len(data) - 4096,
                                                     np.uint8).tobytes()
    scrambled.write_bytes(bytes(noisy))

    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    cams = {name: processes.start('camera_node', {'source': str(path)}, namespace=f'/{name}')
            for name, path in (('garbage', garbage), ('truncated', truncated),
                               ('scrambled', scrambled))}
    images = {name: spinner.collect(Image, f'/{name}/image_raw', image_qos()) for name in cams}
    spinner.until(lambda: len(images['truncated']) >= 40, 60,
                  'the truncated file to play past its end (it loops)')
    spinner.until(lambda: len(statuses(diags, 'garbage/camera')) >= 3, 20,
                  'diagnostics of the garbage file')

    status = statuses(diags, 'garbage/camera')[-1]
    assert status.level == ERROR and f'cannot open file source {garbage}' in status.message
    assert images['garbage'] == []
    assert '[ERROR]' in cams['garbage'].log() and str(garbage) in cams['garbage'].log()
    # The truncated file plays what it has (~20 frames), then loops or reopens: no hang.
    assert all(m.width == 320 and m.height == 240 for m in images['truncated'])
    # Noise in all the frame data: it opens, but not one frame decodes.
    spinner.until(lambda: any('cannot decode any frame' in s.message
                              for s in statuses(diags, 'scrambled/camera')), 20,
                  'the scrambled file reported')
    spinner.spin_for(3.0)  # it keeps saying so between its attempts
    seen = statuses(diags, 'scrambled/camera')
    first = next(i for i, s in enumerate(seen) if s.level == ERROR)
    assert all(s.level == ERROR for s in seen[first:]), [(s.level, s.message) for s in seen]
    assert f'cannot decode any frame of {scrambled} (corrupt file or unsupported codec)' in \
        seen[-1].message
    assert images['scrambled'] == []
    for proc in cams.values():
        assert proc.alive(), proc.log()
        assert_clean_log(proc)
        assert proc.stop(signal.SIGINT) == 0


def test_rtsp_that_never_answers_retries_and_never_shows_the_password(spinner, processes):
    # Port 9 refuses at once; the listener below accepts and then never says a word.
    silent = socket.socket()
    silent.bind(('127.0.0.1', 0))
    silent.listen(16)
    try:
        urls = {'refused': 'rtsp://user:secret@127.0.0.1:9/stream',
                'silent': f'rtsp://user:secret@127.0.0.1:{silent.getsockname()[1]}/stream'}
        diags = spinner.collect(DiagnosticArray, '/diagnostics')
        cams = {name: processes.start('camera_node', {'source': url}, namespace=f'/{name}')
                for name, url in urls.items()}
        spinner.until(lambda: all(any(s.level == ERROR for s in statuses(diags, f'{n}/camera'))
                                  for n in cams), 40, 'both cameras to report the failure')
        spinner.spin_for(6.0)
        for name, proc in cams.items():
            seen = statuses(diags, f'{name}/camera')
            assert proc.alive(), proc.log()
            assert seen[-1].level == ERROR
            assert 'rtsp://***@127.0.0.1' in seen[-1].message
            assert values(seen[-1])['source'].startswith('rtsp://***@127.0.0.1:')
            assert 'retrying' in seen[-1].message
        # The refused one retries with growing delays.
        delays = [float(re.search(r'retrying in ([\d.]+) s', s.message).group(1))
                  for s in statuses(diags, 'refused/camera') if s.level == ERROR]
        assert len(set(delays)) >= 2 and delays == sorted(delays), delays
        everything = ' '.join(f'{s.name} {s.message} {s.hardware_id} ' + ' '.join(
            f'{kv.key} {kv.value}' for kv in s.values) for a in diags for s in a.status)
        assert 'secret' not in everything
        for name, proc in cams.items():
            # Stopping must not wait for an open that hangs on the silent server.
            t0 = time.monotonic()
            assert proc.stop(signal.SIGINT, timeout=10) == 0
            assert time.monotonic() - t0 < 2.0, f'{name}: stop took {time.monotonic() - t0:.1f} s'
            assert 'secret' not in proc.log(), proc.log()
            assert_clean_log(proc)
    finally:
        silent.close()


# ----------------------------------------------------------------------------- detector

def test_unusable_model_file_exits_2_with_one_fatal_line(processes, tmp_path):
    text = tmp_path / 'notes.pt'
    text.write_text('these are not weights\n')
    locked = tmp_path / 'locked.pt'
    locked.write_text('not weights either\n')
    locked.chmod(0)  # root reads it anyway; then it fails as a non-model, still one line
    folder = tmp_path / 'folder.pt'
    folder.mkdir()
    cases = {'missing': tmp_path / 'missing.pt', 'folder': folder, 'text': text,
             'locked': locked}
    procs = {name: processes.start('detector_node', {'model': str(path), 'imgsz': 160},
                                   name=f'detector_{name}') for name, path in cases.items()}
    for name, proc in procs.items():
        assert proc.popen.wait(timeout=120) == 2, proc.log()
        lines = fatal_lines(proc.log())
        assert len(lines) == 1, proc.log()
        assert str(cases[name]) in lines[0], lines[0]
        assert_clean_log(proc)
    assert 'model file not found' in fatal_lines(procs['missing'].log())[0]
    assert 'expected a file' in fatal_lines(procs['folder'].log())[0]
    assert 'cannot load model' in fatal_lines(procs['text'].log())[0]


def test_accelerator_models_without_their_hardware_exit_2(processes, tmp_path):
    engine = tmp_path / 'yolo.engine'
    edgetpu = tmp_path / 'yolo_full_integer_quant_edgetpu.tflite'
    engine.write_bytes(b'\0' * 64)
    edgetpu.write_bytes(b'\0' * 64)
    procs = {'engine': processes.start('detector_node', {'model': str(engine)},
                                       name='detector_engine'),
             'edgetpu': processes.start('detector_node', {'model': str(edgetpu)},
                                        name='detector_edgetpu')}
    expected = {'engine': 'is a TensorRT engine, which needs an NVIDIA GPU with CUDA',
                'edgetpu': 'is compiled for the Coral Edge TPU, but the Edge TPU runtime'}
    for name, proc in procs.items():
        assert proc.popen.wait(timeout=120) == 2, proc.log()
        lines = fatal_lines(proc.log())
        assert len(lines) == 1 and expected[name] in lines[0], proc.log()
        assert_clean_log(proc)


def _wait_for_detector(spinner, pub):
    spinner.until(lambda: pub.get_subscription_count() > 0, 120,
                  'the detector to load its model and subscribe')
    spinner.spin_for(0.5)


def test_detector_converts_every_supported_encoding(spinner, processes):
    processes.start('detector_node', dict(RANDOM_MODEL, conf=0.0))
    pub = spinner.node.create_publisher(Image, 'image_raw', image_qos('reliable', 1))
    dets = spinner.collect(Detection2DArray, 'detections', results_qos())
    _wait_for_detector(spinner, pub)
    bgr = scene_frame()
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    images = {'rgb8': bgr[:, :, ::-1], 'bgra8': cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
              'mono8': gray, 'mono16': gray.astype(np.uint16) * 257, 'bgr8': bgr}
    for i, (encoding, array) in enumerate(images.items()):
        msg = image_msg(array, encoding, 100 + i)
        pub.publish(msg)
        spinner.until(lambda: any(stamp_of(d) == stamp_of(msg) for d in dets), 30,
                      f'detections for the {encoding} image')
        out = next(d for d in dets if stamp_of(d) == stamp_of(msg))
        # conf 0 with random weights keeps every candidate: inference really ran on it.
        assert len(out.detections) > 0, encoding
        assert all(-1 <= d.bbox.center.position.x <= 321 for d in out.detections)


def test_detector_drops_bad_images_with_a_throttled_warning(spinner, processes):
    detector = processes.start('detector_node', dict(RANDOM_MODEL, conf=0.0))
    pub = spinner.node.create_publisher(Image, 'image_raw', image_qos('reliable', 1))
    dets = spinner.collect(Detection2DArray, 'detections', results_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    _wait_for_detector(spinner, pub)
    bgr = scene_frame()
    yuv = np.zeros((240, 320, 2), np.uint8)
    short = image_msg(bgr, 'bgr8', 0)
    short.data = short.data[:-320 * 3]  # one row missing: len(data) != height * step
    bad = {'yuv422': image_msg(yuv, 'yuv422', 0), 'garbage': image_msg(bgr, 'nonsense9', 0),
           'empty': image_msg(np.zeros((0, 0, 3), np.uint8), 'bgr8', 0), 'short': short}
    stamp = 200.0
    for name, msg in bad.items():
        msg.header.stamp.sec = int(stamp)
        pub.publish(msg)
        spinner.spin_for(0.3)
        good = image_msg(bgr, 'bgr8', stamp + 0.5)
        pub.publish(good)
        spinner.until(lambda: any(stamp_of(d) == stamp_of(good) for d in dets), 30,
                      f'detections for the good image after the {name} one')
        assert not any(d.header.stamp.sec == int(stamp) and d.header.stamp.nanosec == 0
                       for d in dets), f'the {name} image was not dropped'
        stamp += 1.0
    for i in range(20):  # a stream of broken images: the warning stays throttled
        pub.publish(image_msg(yuv, 'yuv422', 300 + i))
        spinner.spin_for(0.05)
    spinner.spin_for(1.5)

    def bad_count():
        seen = statuses(diags, 'detector')
        return int(values(seen[-1])['bad_images']) if seen else 0
    spinner.until(lambda: bad_count() >= 14, 10, 'the bad images counted in diagnostics')
    log = detector.log()
    warnings = [line for line in log.splitlines() if 'dropping image' in line]
    assert 1 <= len(warnings) <= 3, warnings
    for words in ('unsupported encoding', 'supported: '):
        assert any(words in w for w in warnings), warnings
    good = image_msg(bgr, 'bgr8', 500)
    pub.publish(good)
    spinner.until(lambda: any(stamp_of(d) == stamp_of(good) for d in dets), 30,
                  'detections again after the broken stream')
    assert detector.alive()
    assert_clean_log(detector)


# ----------------------------------------------------------------------------- parameters

def test_bad_start_parameters_exit_2_naming_the_parameter(processes, tmp_path):
    malformed = tmp_path / 'malformed.yaml'
    malformed.write_text('camera:\n  ros__parameters: {fps: [\n')
    files = [processes.start('camera_node', params_file=str(path), name=f'file_{i}')
             for i, path in enumerate((malformed, tmp_path / 'missing.yaml'))]
    cases = [
        ('camera_node', {'fps': -1.0}, 'fps'),
        ('camera_node', {'width': 'wide'}, 'width'),
        ('tracker_node', {'frame_rate': 0.0}, 'frame_rate'),
        ('tracker_node', {'lost_track_buffer': 1.5}, 'lost_track_buffer'),
        ('detector_node', dict(RANDOM_MODEL, conf=1.5), 'conf'),
        ('detector_node', dict(RANDOM_MODEL, imgsz=100), 'imgsz'),
        ('detector_node', dict(RANDOM_MODEL, deep_score_band=[0.5, 0.2]), 'deep_score_band'),
        ('detector_node', dict(RANDOM_MODEL, deep_score_band=[0.1]), 'deep_score_band'),
        ('detector_node', dict(RANDOM_MODEL, deep_model='yolov8n.yaml'), 'deep_model'),
        ('tracker_node', {'refined_max_age_s': -0.1}, 'refined_max_age_s'),
    ]
    procs = [(processes.start(exe, params, name=f'bad_{i}'), name)
             for i, (exe, params, name) in enumerate(cases)]
    procs += [(proc, path) for proc, path in zip(files, ('malformed.yaml', 'missing.yaml'))]
    procs.append((processes.start('tracker_node', name='bad_executor',
                                  env={'EDGE_TRACKER_EXECUTOR': 'fastest'}),
                  'EDGE_TRACKER_EXECUTOR'))
    for proc, name in procs:
        assert proc.popen.wait(timeout=120) == 2, proc.log()
        lines = fatal_lines(proc.log())
        assert len(lines) == 1 and name in lines[0], proc.log()
        assert_clean_log(proc)


def test_deep_classes_the_model_does_not_know_exit_2_naming_them(processes):
    # After the model loaded: only its class map says which names exist.
    proc = processes.start('detector_node', dict(RANDOM_MODEL, deep_model='yolov8n.yaml',
                                                 deep_classes=['no_such_class']))
    assert proc.popen.wait(timeout=180) == 2, proc.log()
    lines = fatal_lines(proc.log())
    assert len(lines) == 1 and 'deep_classes' in lines[0] and 'no_such_class' in lines[0], \
        proc.log()
    assert_clean_log(proc)


def test_live_parameter_values_are_refused_with_a_reason(spinner, processes):
    tracker = processes.start('tracker_node')
    camera = processes.start('camera_node', {'source': 'synthetic', 'fps': 5.0})
    refused = [
        ('tracker', {'frame_rate': -1.0}, 'frame_rate'),
        ('tracker', {'minimum_iou_threshold': 1.5}, 'minimum_iou_threshold'),
        ('tracker', {'lost_track_buffer': 'long'}, 'lost_track_buffer'),
        ('tracker', {'predict_skipped': False}, 'predict_skipped'),  # read-only
        ('camera', {'fps': 5000.0}, 'fps'),
        ('camera', {'width': 'wide'}, 'width'),
    ]
    for node, params, name in refused:
        result = set_parameters(spinner, node, **params)[0]
        assert not result.successful, (node, params)
        assert result.reason and name in result.reason, (node, params, result.reason)
    accepted = set_parameters(spinner, 'tracker', frame_rate=15.0)[0]
    assert accepted.successful, accepted.reason
    integer = set_parameters(spinner, 'camera', fps=8)[0]  # an int for a float is fine
    assert integer.successful, integer.reason
    assert tracker.alive() and camera.alive()
    assert_clean_log(tracker)
    assert_clean_log(camera)


def test_live_detector_changes_take_effect_without_restart(spinner, processes):
    fps = 6.0
    processes.start('camera_node', {'source': 'synthetic', 'fps': fps})
    detector = processes.start('detector_node', dict(RANDOM_MODEL, imgsz=160, conf=0.0))
    arrivals, dets = [], []

    def on_detections(msg):
        arrivals.append(time.monotonic())
        dets.append(msg)
    spinner.node.create_subscription(Detection2DArray, 'detections', on_detections,
                                     results_qos())
    spinner.until(lambda: sum(1 for d in dets if d.detections) >= 3, 120,
                  'detections at conf 0')

    def settle_then(predicate, what, n=4):
        """Waits until the `n` newest messages (after a change) satisfy `predicate`."""
        start = len(dets)
        spinner.until(lambda: len(dets) >= start + n and all(
            predicate(d) for d in dets[-n:]), 30, what)

    # classes: an unknown name is refused with the names the model knows; a known one works.
    result = set_parameters(spinner, 'detector', classes=['unicorn'])[0]
    assert not result.successful
    assert "unknown class 'unicorn'" in result.reason and 'the model knows: 0, 1, 2' in \
        result.reason, result.reason
    wanted = next(d for d in reversed(dets) if d.detections).detections[0] \
        .results[0].hypothesis.class_id
    assert set_parameters(spinner, 'detector', classes=[wanted])[0].successful
    settle_then(lambda d: d.detections and {x.results[0].hypothesis.class_id
                                            for x in d.detections} == {wanted},
                f'only class {wanted!r}')
    assert set_parameters(spinner, 'detector', classes='')[0].successful

    # conf: 1.0 keeps nothing, 0.0 everything again.
    assert set_parameters(spinner, 'detector', conf=1.0)[0].successful
    settle_then(lambda d: not d.detections, 'empty detections at conf 1.0')
    assert set_parameters(spinner, 'detector', conf=0.0)[0].successful
    settle_then(lambda d: len(d.detections) > 0, 'detections again at conf 0.0')

    def rate(seconds=5.0):
        spinner.spin_for(1.0)  # let the change settle
        n0, t0 = len(arrivals), time.monotonic()
        spinner.spin_for(seconds)
        return (len(arrivals) - n0) / (time.monotonic() - t0)

    every = rate()
    assert set_parameters(spinner, 'detector', frame_skip=3)[0].successful
    third = rate()
    assert every > 0.6 * fps, f'{every:.1f} Hz with frame_skip 1'
    assert 0 < third < 0.6 * every, f'frame_skip 3: {third:.1f} Hz vs {every:.1f} Hz'
    assert detector.alive()
    assert_clean_log(detector)


# ----------------------------------------------------------------------------- tracker

def _box(cx, cy, w, h, score=0.9, name='car'):
    d = Detection2D()
    d.bbox.center.position.x, d.bbox.center.position.y = float(cx), float(cy)
    d.bbox.size_x, d.bbox.size_y = float(w), float(h)
    hyp = ObjectHypothesisWithPose()
    hyp.hypothesis.class_id, hyp.hypothesis.score = name, score
    d.results.append(hyp)
    return d


def _frame(stamp_s, boxes):
    msg = Detection2DArray()
    msg.header.frame_id = 'cam'
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), int(stamp_s % 1 * 1e9)
    for d in boxes:
        d.header = msg.header
    msg.detections = list(boxes)
    return msg


def _movers(i):
    return [_box(100 + 4 * i, 100, 40, 40), _box(300, 80 + 3 * i, 50, 30, name='person'),
            _box(500 - 5 * i, 300, 60, 60)]


def test_tracker_survives_broken_and_disordered_detections(spinner, processes):
    tracker = processes.start('tracker_node', {'frame_rate': 30.0})
    pub = spinner.node.create_publisher(Detection2DArray, 'detections', results_qos())
    tracks = spinner.collect(Detection2DArray, 'tracks', results_qos())
    spinner.until(lambda: pub.get_subscription_count() > 0, 30, 'the tracker to subscribe')
    spinner.until(lambda: spinner.node.count_publishers('tracks') > 0, 30, 'tracks publisher')
    spinner.spin_for(0.5)

    nan, inf = float('nan'), float('inf')
    t = 1000.0
    expected, unexpected = [], []

    def send(msg, answered=True):
        (expected if answered else unexpected).append(stamp_of(msg))
        pub.publish(msg)
        spinner.spin_for(1 / 30)

    for i in range(10):
        send(_frame(t + i / 30, _movers(i)))
    t += 10 / 30
    broken = [_box(nan, 100, 40, 40), _box(200, 200, inf, 40), _box(250, 250, -40, 40),
              _box(260, 260, 40, -1e9), _box(1e308, 1e308, 1e308, 1e308),
              _box(300, 300, 40, 40, score=nan), _box(320, 320, 40, 40, score=-inf)]
    send(_frame(t, _movers(10) + broken))
    send(_frame(t - 0.2, _movers(4)), answered=False)   # out of order
    send(_frame(t, _movers(10)), answered=False)        # duplicate stamp
    t += 1 / 30
    burst = [_box(20 + (k % 25) * 25, 20 + (k // 25) * 22, 18, 18, score=0.6 + 0.001 * (k % 300))
             for k in range(500)]
    t_burst = time.monotonic()
    send(_frame(t, _movers(11) + burst))
    spinner.until(lambda: stamp_of(tracks[-1]) == expected[-1] if tracks else False, 20,
                  'tracks for the 500-box burst')
    burst_s = time.monotonic() - t_burst
    t += 30.0                                            # a 30 s gap in stamps
    for i in range(12, 20):
        send(_frame(t + (i - 12) / 30, _movers(i)))
    spinner.until(lambda: len(tracks) >= len(expected), 20, 'tracks after the gap')
    spinner.spin_for(0.5)

    got = [stamp_of(m) for m in tracks]
    # One answer per in-order stamp: the stale and the duplicate message got none.
    assert got == expected, f'answered {got}, expected {expected} (not {unexpected})'
    for msg in tracks:
        ids = [d.id for d in msg.detections]
        assert all(re.fullmatch(r'\d+', i) for i in ids), ids
        assert len(set(ids)) == len(ids), f'duplicate ids at {stamp_of(msg)}: {ids}'
        for d in msg.detections:
            assert np.isfinite([d.bbox.center.position.x, d.bbox.center.position.y,
                                d.bbox.size_x, d.bbox.size_y]).all()
            assert d.bbox.size_x >= 0 and d.bbox.size_y >= 0
    assert len(tracks[-1].detections) == 3, 'tracks must form again after the gap'
    assert len(tracks[10].detections) >= 3  # the broken boxes did not break the good ones
    assert burst_s < 5.0, f'500 boxes took {burst_s:.1f} s'
    assert tracker.alive()
    assert_clean_log(tracker)


# ----------------------------------------------------------------------------- shutdown

@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_shutdown_in_the_middle_of_inference(spinner, processes, sig):
    processes.start('camera_node', {'source': 'synthetic', 'fps': 30.0})
    detector = processes.start('detector_node',
                               {'model': 'yolov8n.yaml', 'imgsz': 1280, 'threads': 1})
    dets = spinner.collect(Detection2DArray, 'detections', results_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    spinner.until(lambda: len(dets) >= 2, 180, 'slow inference to be running')

    def infer_ms():
        seen = statuses(diags, 'detector')
        return float(values(seen[-1])['inference_mean_ms']) if seen else 0.0
    spinner.until(lambda: infer_ms() > 0, 20, 'inference times in the diagnostics')
    # The camera keeps it busy and one inference lasts this long: the signal lands inside one.
    assert infer_ms() > 200, f'this test needs a slow model, inference took {infer_ms():.0f} ms'
    spinner.spin_for(0.3)
    _assert_stops_quickly_and_cleanly(detector, sig)


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_shutdown_in_the_middle_of_capture(spinner, processes, sig):
    images = spinner.collect(Image, 'image_raw', image_qos())
    camera = processes.start('camera_node', {'source': 'synthetic', 'fps': 120.0,
                                             'width': 1280, 'height': 720})
    spinner.until(lambda: len(images) >= 10, 30, 'frames')
    _assert_stops_quickly_and_cleanly(camera, sig)


def _assert_stops_quickly_and_cleanly(process, sig):
    t0 = time.monotonic()
    code = process.stop(sig, timeout=10)
    took = time.monotonic() - t0
    assert code == 0, process.log()
    assert took < 2.0, f'{sig.name} took {took:.2f} s'
    assert_clean_log(process)
