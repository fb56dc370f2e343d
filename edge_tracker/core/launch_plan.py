"""What a profile starts: the nodes, their parameters, remappings and environment.

One source of truth for the launch files (launch/*.launch.py turn the plan into launch_ros
Node actions), for the single-process `pipeline` executable (which turns it into --ros-args) and
for the tests. ROS-free: it only reads the profile YAML.
"""

import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import yaml

from edge_tracker.core.errors import CONFIGURATION_EXIT_CODE

PROFILES = ('jetson', 'pi', 'coral')


@dataclass
class NodePlan:
    executable: str            # console script of this package
    name: str                  # node name (the YAML's key)
    overrides: Dict[str, object] = field(default_factory=dict)   # launch arguments that win
    remappings: List[Tuple[str, str]] = field(default_factory=list)
    respawn: bool = False


@dataclass
class Plan:
    profile: str
    params_file: str
    namespace: str
    nodes: List[NodePlan]
    env: Dict[str, str]
    log_level: str = 'info'

    def ros_args(self, node: NodePlan, log_level: bool = True) -> List[str]:
        """The same node as --ros-args (a command line, or rclpy's Node(cli_args=...), where
        the log level belongs to rclpy.init instead: log_level=False)."""
        args = ['--ros-args', '-r', f'__node:={node.name}', '--params-file', self.params_file]
        if self.namespace:
            args += ['-r', f'__ns:=/{self.namespace}']
        for key, value in node.overrides.items():
            args += ['-p', f'{key}:={yaml.safe_dump(value, default_flow_style=True).strip()}'
                     .replace('\n...', '')]
        for src, dst in node.remappings:
            args += ['-r', f'{src}:={dst}']
        if log_level:
            args += ['--log-level', self.log_level]
        return args

    def on_exit(self, node: NodePlan, returncode: Optional[int]) -> Optional[str]:
        """What launch does when `node`'s process ends: None lets respawn (or nothing) happen;
        a text is the reason to shut the whole launch down instead. A configuration error
        (exit code 2: bad parameters, a model this machine cannot run) would fail the same way
        on every respawn, so it ends the launch with the reason instead of looping."""
        if returncode != CONFIGURATION_EXIT_CODE:
            return None
        where = f'/{self.namespace}/{node.name}' if self.namespace else node.name
        return (f'{where} stopped on a configuration error (exit code {returncode}; its FATAL '
                'line above says what to fix): not respawning it, shutting down')


class PlanError(ValueError):
    pass


def profile_file(share_dir: str, profile: str) -> str:
    if profile not in PROFILES:
        raise PlanError(f'unknown profile {profile!r}; choose one of {", ".join(PROFILES)}')
    return os.path.join(share_dir, 'config', f'{profile}.yaml')


def read_profile(path: str) -> Dict[str, Dict[str, object]]:
    """Node name -> parameters, from a ROS 2 parameter file whose keys are '/**/NAME' or NAME."""
    try:
        with open(path, encoding='utf-8') as f:
            doc = yaml.safe_load(f) or {}
    except OSError as exc:
        raise PlanError(f'cannot read parameter file {path}: {exc.strerror}') from exc
    out = {}
    for key, body in doc.items():
        name = str(key).rsplit('/', 1)[-1]
        if not isinstance(body, dict) or 'ros__parameters' not in body:
            raise PlanError(f'{path}: {key} has no ros__parameters')
        out[name] = dict(body['ros__parameters'] or {})
    return out


# Fast DDS 2.x (Humble, Jazzy) reads the first name, 3.x (Kilted and later) the second and warns
# that the first is deprecated; given both, 3.x loads the file twice and logs XML errors. Measured
# with Jazzy's wheels: with only the second name, 3 of 12.5 file frames/s arrived.
PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')
_FASTDDS_2_DISTROS = ('foxy', 'galactic', 'humble', 'iron', 'jazzy')


def _rmw_fastrtps_major(environ: Dict[str, str]) -> Optional[int]:
    """Major version of the installed rmw_fastrtps_cpp, from its package.xml under an ament
    prefix (a distro, a workspace, or the PyPI wheels' venv): 9 and later use Fast DDS 3."""
    for prefix in environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        try:
            with open(os.path.join(prefix, 'share', 'rmw_fastrtps_cpp', 'package.xml'),
                      encoding='utf-8') as f:
                found = re.search(r'<version>\s*(\d+)\.', f.read())
        except OSError:
            continue
        if found:
            return int(found.group(1))
    return None


def profile_variables(environ: Dict[str, str]) -> Tuple[str, ...]:
    """The profile variable(s) this machine's Fast DDS reads: by ROS_DISTRO, else by the
    installed rmw_fastrtps_cpp's version (pip-installed ROS sets no ROS_DISTRO), else both."""
    distro = environ.get('ROS_DISTRO', '').strip().lower()
    if distro:
        return PROFILE_VARIABLES[:1] if distro in _FASTDDS_2_DISTROS else PROFILE_VARIABLES[1:]
    major = _rmw_fastrtps_major(environ)
    if major is None:
        return PROFILE_VARIABLES
    return PROFILE_VARIABLES[:1] if major < 9 else PROFILE_VARIABLES[1:]


def fastdds_env(share_dir: str, environ: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Transport settings sized for images, unless the user chose a middleware setup already."""
    environ = os.environ if environ is None else environ
    rmw = environ.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    if not rmw.startswith('rmw_fastrtps'):
        return {}
    if any(environ.get(v) for v in PROFILE_VARIABLES) or environ.get('FASTDDS_BUILTIN_TRANSPORTS'):
        return {}
    path = os.path.join(share_dir, 'config', 'fastdds_large_images.xml')
    return {v: path for v in profile_variables(environ)}


def apply_fastdds_env(share_dir: str, environ=None) -> Dict[str, str]:
    """Sets fastdds_env() in this process's environment (before its DDS participant exists,
    i.e. before rclpy.init); returns what it set. Every node process calls it, so a node
    started without the launch files gets the same transports as one started with them."""
    environ = os.environ if environ is None else environ
    chosen = fastdds_env(share_dir, environ)
    for key, value in chosen.items():
        environ.setdefault(key, value)
    return chosen


def make_plan(share_dir: str, profile: str, namespace: str = '', source: str = '',
              model: str = '', params_file: str = '', use_thermal: bool = True,
              log_level: str = 'info', environ: Optional[Dict[str, str]] = None,
              use_sim_time: bool = False, use_camera: bool = True) -> Plan:
    """The nodes a profile starts. Empty `source`/`model` keep the YAML's values;
    `params_file` replaces the profile's YAML. `use_sim_time` runs every node on /clock (a
    replayed recording, a simulator); `use_camera` false leaves image_raw and camera_info to
    someone else (`ros2 bag play`)."""
    path = params_file or profile_file(share_dir, profile)
    if not os.path.isfile(path):
        raise PlanError(f'parameter file not found: {path}')
    sections = read_profile(path)
    camera = NodePlan('camera_node', 'camera', respawn=True)
    detector = NodePlan('detector_node', 'detector', respawn=True)
    tracker = NodePlan('tracker_node', 'tracker')
    if source:
        camera.overrides['source'] = source
    if model:
        detector.overrides['model'] = model
    nodes = ([camera] if use_camera else []) + [detector, tracker]
    if use_thermal:
        nodes.append(NodePlan('thermal_node', 'thermal_monitor'))
    if use_sim_time:
        for node in nodes:
            node.overrides['use_sim_time'] = True
    missing = [n.name for n in nodes if n.name not in sections]
    if missing:
        raise PlanError(f'{path} has no section for {", ".join(missing)}')
    return Plan(profile=profile, params_file=path, namespace=namespace.strip('/'), nodes=nodes,
                env=fastdds_env(share_dir, environ), log_level=log_level)
