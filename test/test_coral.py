"""The coral profile without a Coral: the Edge TPU runtime check comes first, and the profile's
CPU fallback (an int8 .tflite through the LiteRT runtime) runs end to end with tracks flowing."""

from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from vision_msgs.msg import Detection2DArray

from conftest import REPO
from edge_tracker.core.detector import ModelError, check_model, edgetpu_runtime_available
from edge_tracker.core.launch_plan import make_plan, read_profile
from edge_tracker.paths import share_directory
from edge_tracker.qos import results_qos
from test_pipeline import diagnostic_values

SHARE = share_directory()


def _coral_detector():
    return read_profile(f'{SHARE}/config/coral.yaml')['detector']


def test_edge_tpu_runtime_is_checked_before_the_file():
    assert not edgetpu_runtime_available(), 'this test needs a machine without the Edge TPU'
    # A missing Edge TPU model: what to install comes first, not "file not found".
    with pytest.raises(ModelError, match='Edge TPU runtime') as info:
        check_model('nowhere/yolov8n_full_integer_quant_edgetpu.tflite')
    assert "coral profile's fallback_model" in str(info.value)
    with pytest.raises(ModelError, match='model file not found'):
        check_model('nowhere/yolov8n_full_integer_quant.tflite')


def test_coral_profile_names_a_committed_cpu_int8_fallback():
    fallback = _coral_detector()['fallback_model']
    path = REPO / 'models' / fallback
    assert fallback.endswith('.tflite') and not fallback.endswith('_edgetpu.tflite')
    assert path.is_file() and path.stat().st_size < 5 * 1024 * 1024
    assert check_model(str(path)) == 'tflite'
    # Installed with the package, so the relative name resolves on a robot too.
    assert (Path(SHARE) / 'models' / fallback).is_file()


def test_coral_profile_runs_its_cpu_fallback_end_to_end(spinner, processes):
    """The coral YAML as the launch passes it, with model:= its fallback_model (what the
    runtime message says to do) and the synthetic camera."""
    fallback = _coral_detector()['fallback_model']
    plan = make_plan(SHARE, 'coral', namespace='coral_cpu', source='synthetic', model=fallback,
                     use_thermal=False)
    for node in plan.nodes:
        if node.name == 'camera':
            node.overrides.update(width=640, height=480, fps=10.0)
    started = [processes.start(n.executable, extra_args=plan.ros_args(n)[1:])
               for n in plan.nodes]
    tracks = spinner.collect(Detection2DArray, '/coral_cpu/tracks', results_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    spinner.until(lambda: sum(1 for m in tracks if m.detections) >= 10, 120,
                  'tracks with boxes from the coral profile on the CPU')
    assert all(p.alive() for p in started), [p.log()[-500:] for p in started if not p.alive()]
    spinner.until(lambda: diagnostic_values(diags, 'detector') is not None, 10,
                  'detector diagnostics')
    values = diagnostic_values(diags, 'detector')
    assert values['backend'] == 'litert' and values['model'] == fallback
    assert int(values['inferred_frames']) > 0 and float(values['inference_mean_ms']) > 0
    classes = {d.results[0].hypothesis.class_id for m in tracks for d in m.detections}
    assert classes and classes <= {'circle', 'square', 'triangle'}
