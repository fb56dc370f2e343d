"""Launch files and profiles: the plan, the launch files' use of it (with stand-in launch
modules, since `launch` is not installable here), and each profile run as real processes."""

import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from conftest import package_executable
from edge_tracker.conversions import stamp_key
from edge_tracker.core.launch_plan import PROFILES, PlanError, make_plan, read_profile
from edge_tracker.core.latest import usable_cores
from edge_tracker.paths import share_directory
from edge_tracker.tools.procs import run
from edge_tracker.qos import image_qos, notice_qos, results_qos
from test_faults import set_parameters
from test_pipeline import diagnostic_values

SHARE = share_directory()
NODE_MODULES = {'camera': 'camera_node', 'detector': 'detector_node', 'tracker': 'tracker_node',
                'thermal_monitor': 'thermal_node'}


def declared_parameters(module_name):
    module = importlib.import_module(f'edge_tracker.nodes.{module_name}')
    return {p.name for p in module.PARAMS}


def console_scripts():
    text = (Path(__file__).resolve().parents[1] / 'setup.py').read_text()
    return {line.split('=')[0].strip().strip("'") for line in text.splitlines()
            if '= edge_tracker.' in line}


@pytest.mark.parametrize('profile', PROFILES)
def test_profile_yaml_sets_exactly_the_declared_parameters(profile):
    sections = read_profile(os.path.join(SHARE, 'config', f'{profile}.yaml'))
    assert set(sections) == set(NODE_MODULES)
    for name, module in NODE_MODULES.items():
        declared = declared_parameters(module)
        unknown = set(sections[name]) - declared
        assert not unknown, f'{profile}.yaml sets unknown {name} parameters: {unknown}'
        missing = declared - set(sections[name])
        assert not missing, f'{profile}.yaml leaves {name} parameters undocumented: {missing}'


@pytest.mark.parametrize('profile', PROFILES)
def test_plan_names_real_executables_and_passes_overrides(profile):
    plan = make_plan(SHARE, profile, namespace='/front/', source='synthetic', model='m.pt',
                     environ={})
    scripts = console_scripts()
    assert [n.executable for n in plan.nodes] == ['camera_node', 'detector_node',
                                                  'tracker_node', 'thermal_node']
    assert all(n.executable in scripts for n in plan.nodes)
    assert plan.namespace == 'front'
    by_name = {n.name: n for n in plan.nodes}
    assert by_name['camera'].overrides == {'source': 'synthetic'}
    assert by_name['detector'].overrides == {'model': 'm.pt'}
    assert by_name['camera'].respawn and by_name['detector'].respawn
    profile = os.path.join(SHARE, 'config', 'fastdds_large_images.xml')
    assert plan.env == {'FASTDDS_DEFAULT_PROFILES_FILE': profile,
                        'FASTRTPS_DEFAULT_PROFILES_FILE': profile}
    args = plan.ros_args(by_name['detector'])
    assert args[:3] == ['--ros-args', '-r', '__node:=detector']
    assert '__ns:=/front' in args and 'model:=m.pt' in args


def test_plan_use_sim_time_reaches_every_node_and_use_camera_drops_the_camera():
    plan = make_plan(SHARE, 'pi', use_sim_time=True, use_camera=False, environ={})
    assert [n.name for n in plan.nodes] == ['detector', 'tracker', 'thermal_monitor']
    assert all(n.overrides.get('use_sim_time') is True for n in plan.nodes)
    assert all('use_sim_time:=true' in plan.ros_args(n) for n in plan.nodes)
    assert all('use_sim_time' not in n.overrides for n in make_plan(SHARE, 'pi').nodes)


def test_plan_options_and_errors(tmp_path):
    plan = make_plan(SHARE, 'pi', use_thermal=False, environ={'ROS_DISTRO': 'humble'})
    assert 'thermal_monitor' not in [n.name for n in plan.nodes]
    assert list(plan.env) == ['FASTRTPS_DEFAULT_PROFILES_FILE']
    for chosen in ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE',
                   'FASTDDS_BUILTIN_TRANSPORTS'):
        assert make_plan(SHARE, 'pi', environ={chosen: 'mine'}).env == {}
    assert make_plan(SHARE, 'pi', environ={'RMW_IMPLEMENTATION': 'rmw_cyclonedds_cpp'}).env == {}
    with pytest.raises(PlanError, match='unknown profile'):
        make_plan(SHARE, 'nano')
    with pytest.raises(PlanError, match='not found'):
        make_plan(SHARE, 'pi', params_file=str(tmp_path / 'missing.yaml'))
    partial = tmp_path / 'partial.yaml'
    partial.write_text('/**/camera:\n  ros__parameters:\n    fps: 5.0\n')
    with pytest.raises(PlanError, match='no section for detector'):
        make_plan(SHARE, 'pi', params_file=str(partial))


class _Recorded:
    """Stand-in for a launch action: remembers how it was built."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _SetEnvironmentVariable(_Recorded):
    pass


class _RegisterEventHandler(_Recorded):
    pass


class _LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context[self.name]


@pytest.fixture
def stand_in_launch(monkeypatch):
    """Minimal `launch` / `launch_ros` modules with the names the launch files use."""
    modules = {
        'launch': {'LaunchDescription': lambda actions: list(actions)},
        'launch.actions': {'DeclareLaunchArgument': _Recorded, 'OpaqueFunction': _Recorded,
                           'SetEnvironmentVariable': _SetEnvironmentVariable,
                           'IncludeLaunchDescription': _Recorded, 'LogInfo': _Recorded,
                           'EmitEvent': _Recorded,
                           'RegisterEventHandler': _RegisterEventHandler},
        'launch.event_handlers': {'OnProcessExit': _Recorded},
        'launch.events': {'Shutdown': _Recorded},
        'launch.substitutions': {'LaunchConfiguration': _LaunchConfiguration},
        'launch.launch_description_sources': {'PythonLaunchDescriptionSource': _Recorded},
        'launch_ros': {}, 'launch_ros.actions': {'Node': _Recorded},
    }
    for name, attrs in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)


def _load_launch_file(name):
    path = os.path.join(SHARE, 'launch', name)
    spec = importlib.util.spec_from_file_location(name.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def test_fast_dds_profile_variable_follows_the_installed_fast_dds(tmp_path):
    """Fast DDS 2.x (Humble, Jazzy) reads FASTRTPS_..., 3.x (Kilted) FASTDDS_... and, given
    both, loads the file twice with XML errors: one name, chosen by ROS_DISTRO or else by the
    rmw_fastrtps_cpp found under AMENT_PREFIX_PATH (pip-installed ROS sets no ROS_DISTRO)."""
    def variables(environ):
        return list(make_plan(SHARE, 'pi', environ=environ).env)
    assert variables({'ROS_DISTRO': 'jazzy'}) == ['FASTRTPS_DEFAULT_PROFILES_FILE']
    assert variables({'ROS_DISTRO': 'kilted'}) == ['FASTDDS_DEFAULT_PROFILES_FILE']
    prefixes = []
    for distro, version in (('jazzy', '8.4.3'), ('kilted', '9.3.3')):
        share = tmp_path / distro / 'share' / 'rmw_fastrtps_cpp'
        share.mkdir(parents=True)
        (share / 'package.xml').write_text(f'<package format="3">\n  <name>rmw_fastrtps_cpp</name>'
                                           f'\n  <version>{version}</version>\n</package>\n')
        prefixes.append(str(tmp_path / distro))
    empty = str(tmp_path / 'workspace')
    assert variables({'AMENT_PREFIX_PATH': os.pathsep.join([empty, prefixes[0]])}) == \
        ['FASTRTPS_DEFAULT_PROFILES_FILE']
    assert variables({'AMENT_PREFIX_PATH': prefixes[1]}) == ['FASTDDS_DEFAULT_PROFILES_FILE']
    assert sorted(variables({'AMENT_PREFIX_PATH': empty})) == [
        'FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE']   # unknown: both


def test_base_launch_file_builds_the_plan(stand_in_launch, monkeypatch):
    for var in ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('ROS_DISTRO', 'kilted')
    actions = _load_launch_file('edge_tracker.launch.py')
    declared = {a.args[0]: a.kwargs for a in actions if 'default_value' in a.kwargs}
    assert set(declared) == {'profile', 'namespace', 'source', 'model', 'params_file', 'rviz',
                             'log_level', 'use_thermal', 'use_camera', 'use_sim_time'}
    assert all(kw['description'] for kw in declared.values())
    setup = [a for a in actions if 'function' in a.kwargs][0].kwargs['function']
    context = {name: kw['default_value'] for name, kw in declared.items()}
    context.update(profile='jetson', namespace='cam2', model='/models/y.engine', rviz='true')
    made = setup(context)
    nodes = [a.kwargs for a in made if 'executable' in a.kwargs]
    assert [n['executable'] for n in nodes] == ['camera_node', 'detector_node', 'tracker_node',
                                                'thermal_node', 'rviz2']
    detector = nodes[1]
    assert detector['package'] == 'edge_tracker' and detector['namespace'] == 'cam2'
    assert detector['parameters'] == [os.path.join(SHARE, 'config', 'jetson.yaml'),
                                      {'model': '/models/y.engine'}]
    assert detector['respawn'] is True and nodes[2]['respawn'] is False
    assert ('/annotated_image', '/cam2/annotated_image') in nodes[4]['remappings']
    env = [a.args for a in made if isinstance(a, _SetEnvironmentVariable)]
    profile = os.path.join(SHARE, 'config', 'fastdds_large_images.xml')
    assert env == [('FASTDDS_DEFAULT_PROFILES_FILE', profile)]
    context.update(use_thermal='false', rviz='false')
    assert 'thermal_node' not in [a.kwargs.get('executable') for a in setup(context)]
    assert nodes[4]['parameters'] == [{'use_sim_time': False}]
    # A replay: no camera, every node on /clock.
    context.update(use_camera='false', use_sim_time='true', rviz='true', use_thermal='true')
    nodes = [a.kwargs for a in setup(context) if 'executable' in a.kwargs]
    assert [n['executable'] for n in nodes] == ['detector_node', 'tracker_node', 'thermal_node',
                                                'rviz2']
    assert all(n['parameters'][-1]['use_sim_time'] is True for n in nodes)
    assert nodes[0]['parameters'][-1] == {'model': '/models/y.engine', 'use_sim_time': True}


def test_configuration_error_ends_the_launch_instead_of_respawning(stand_in_launch):
    """Exit code 2 (bad configuration) would fail the same way on every respawn: the exit
    handler of each node logs why and shuts the launch down; any other exit code is left to
    respawn (camera, detector) or nothing."""
    actions = _load_launch_file('edge_tracker.launch.py')
    declared = {a.args[0]: a.kwargs['default_value'] for a in actions
                if 'default_value' in a.kwargs}
    setup = [a for a in actions if 'function' in a.kwargs][0].kwargs['function']
    made = setup(dict(declared, namespace='cam2'))
    handlers = {h.args[0].kwargs['target_action'].kwargs['executable']: h.args[0].kwargs['on_exit']
                for h in made if isinstance(h, _RegisterEventHandler)}
    assert set(handlers) == {'camera_node', 'detector_node', 'tracker_node', 'thermal_node'}
    event = types.SimpleNamespace
    for crash in (1, -11, 0):
        assert handlers['detector_node'](event(returncode=crash), None) is None
    log, shutdown = handlers['detector_node'](event(returncode=2), None)
    reason = log.kwargs['msg']
    assert '/cam2/detector' in reason and 'configuration error' in reason
    assert 'not respawning' in reason
    assert shutdown.kwargs['event'].kwargs['reason'] == reason
    assert handlers['tracker_node'](event(returncode=2), None) is not None


@pytest.mark.parametrize('profile', PROFILES)
def test_profile_launch_files_include_the_base_with_their_profile(stand_in_launch, profile):
    (include,) = _load_launch_file(f'{profile}.launch.py')
    source = include.args[0]
    assert source.args[0] == os.path.join(SHARE, 'launch', 'edge_tracker.launch.py')
    assert dict(include.kwargs['launch_arguments']) == {'profile': profile}


STAND_IN = {'device': 'cpu', 'imgsz': 320, 'threads': 1, 'half': False}


@pytest.mark.parametrize('profile', PROFILES)
def test_profile_runs_as_processes_with_a_stand_in_model(spinner, processes, profile):
    """The profile's YAML as the launch file would pass it, with what this machine can run
    instead of the profile's engine/edgetpu model and camera."""
    plan = make_plan(SHARE, profile, namespace=f'p_{profile}', source='synthetic',
                     model='yolov8n.yaml')
    for node in plan.nodes:
        if node.name == 'detector':
            node.overrides.update(STAND_IN)
        if node.name == 'camera':
            node.overrides.update(width=640, height=480, fps=10.0)
    started = [processes.start(n.executable, extra_args=plan.ros_args(n)[1:])
               for n in plan.nodes]
    tracks = spinner.collect(Detection2DArray, f'/p_{profile}/tracks', results_qos())
    spinner.until(lambda: len(tracks) >= 20, 120, f'tracks from the {profile} profile')
    assert all(p.alive() for p in started), [p.log()[-500:] for p in started if not p.alive()]


def _dummy(path):
    path.write_bytes(b'\0' * 64)
    return str(path)


@pytest.mark.parametrize('profile, model, message', [
    ('jetson', 'yolov8n.engine', 'needs an NVIDIA GPU with CUDA'),
    ('coral', 'yolov8n_full_integer_quant_edgetpu.tflite', 'Edge TPU runtime'),
])
def test_hardware_profiles_stop_with_one_clear_message_without_their_hardware(
        processes, tmp_path, profile, model, message):
    plan = make_plan(SHARE, profile, model=_dummy(tmp_path / model))
    detector = [n for n in plan.nodes if n.name == 'detector'][0]
    proc = processes.start('detector_node', extra_args=plan.ros_args(detector)[1:])
    assert proc.popen.wait(60) == 2
    log = proc.log()
    assert message in log and 'FATAL' in log and 'Traceback' not in log


def test_jetson_profile_default_engine_missing_without_cuda_says_so(processes):
    plan = make_plan(SHARE, 'jetson')
    detector = [n for n in plan.nodes if n.name == 'detector'][0]
    proc = processes.start('detector_node', extra_args=plan.ros_args(detector)[1:])
    assert proc.popen.wait(60) == 2
    assert 'yolov8n.engine is a TensorRT engine' in proc.log()


def test_pipeline_runs_a_profile_in_one_process(spinner, processes):
    proc = processes.start('pipeline', args=['profile:=pi', 'source:=synthetic',
                                             'model:=yolov8n.yaml', 'namespace:=one',
                                             'use_thermal:=false'])
    tracks = spinner.collect(Detection2DArray, '/one/tracks', results_qos())
    detections = spinner.collect(Detection2DArray, '/one/detections', results_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    spinner.until(lambda: len(tracks) >= 20 and len(detections) >= 5, 120,
                  'tracks and detections from the pipeline process')
    names = set(spinner.node.get_node_names())
    assert {'camera', 'detector', 'tracker'} <= names and 'thermal_monitor' not in names
    # The camera hands frames to the detector directly: nobody subscribes to image_raw ...
    assert spinner.node.count_subscribers('/one/image_raw') == 0
    spinner.until(lambda: (diagnostic_values(diags, 'detector') or {}).get('image_feed')
                  == 'in-process', 30, "the detector's diagnostics to name its feed")
    # The detector hands its results and frame announcements to the tracker directly too:
    # the tracker subscribes to none of them (the test's own detections listener is the one),
    spinner.until(lambda: (diagnostic_values(diags, 'tracker') or {}).get('results_feed')
                  == 'in-process', 30, "the tracker's diagnostics to name its feed")
    assert spinner.node.count_subscribers('/one/detections/in_flight') == 0
    assert spinner.node.count_subscribers('/one/detections/skipped') == 0
    assert spinner.node.count_subscribers('/one/detections') == 1
    # The profile's 2 workers x 2 threads (a Pi 5's 4 cores) never oversubscribe this machine.
    detector = diagnostic_values(diags, 'detector')
    assert int(detector['workers']) == 2
    assert int(detector['threads_per_worker']) == max(1, min(2, usable_cores() // 2))
    # ... its tracks are measured ones (their frames' detections), in stamp order, ...
    # (The profile skips frames and gates on motion: a share of the tracks is predicted.)
    start = len(tracks)

    def measured():
        later = {stamp_key(m.header.stamp) for m in tracks[start:]}
        return later & {stamp_key(m.header.stamp) for m in detections}
    spinner.until(lambda: len(measured()) >= 5, 60, 'tracks of frames that got detections')
    later = [stamp_key(m.header.stamp) for m in tracks]
    assert later == sorted(later), 'tracks out of stamp order'
    # ... and the announcements still go out to a subscriber of their own (frame_skip 2:
    # every other frame is announced skipped).
    announced = spinner.collect(Header, '/one/detections/skipped', notice_qos())
    spinner.until(lambda: len(announced) >= 5, 30, 'detections/skipped for a subscriber')
    # ... and it is still published, with the frames' stamps, to whoever subscribes.
    images = spinner.collect(Image, '/one/image_raw', image_qos('best_effort', 5))
    spinner.until(lambda: len(images) >= 5, 30, 'image_raw for a subscriber of its own')
    image_stamps = {stamp_key(m.header.stamp) for m in images}
    spinner.until(lambda: image_stamps & {stamp_key(m.header.stamp) for m in tracks}, 30,
                  'tracks of the frames that went out on image_raw')
    assert images[-1].width > 0 and len(images[-1].data) == images[-1].height * images[-1].step
    # enabled: false stops the hand-off too (tracks go on, predicted); true brings it back.
    assert all(r.successful for r in set_parameters(spinner, 'one/detector', enabled=False))
    # Inferences already under way still finish (slowly on a loaded machine); then none come.
    for _ in range(15):
        n, t = len(detections), len(tracks)
        spinner.spin_for(2.0)
        if len(detections) == n:
            break
    assert len(detections) == n, 'detections kept coming with enabled: false'
    assert len(tracks) > t + 5, 'tracks stopped with the detector disabled'
    assert all(r.successful for r in set_parameters(spinner, 'one/detector', enabled=True))
    spinner.until(lambda: len(detections) > n + 3, 30, 'detections once enabled again')
    assert proc.stop() == 0


def test_pipeline_refuses_unknown_arguments():
    result = run([package_executable('pipeline'), 'profil:=pi'], timeout=60)
    assert result.returncode == 2
    assert "unknown argument 'profil:=pi'" in result.stdout
