"""thermal_node as a real process reading a fake sysfs tree that the tests rewrite."""

import shutil
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Temperature
from std_msgs.msg import UInt8

THROTTLE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
TEMPERATURE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
OK, WARN, STALE = b'\x00', b'\x01', b'\x03'


def make_zone(root: Path, index: int, zone_type: str, temp_c: float) -> None:
    path = root / f'thermal_zone{index}'
    path.mkdir(parents=True, exist_ok=True)
    (path / 'type').write_text(zone_type + '\n')
    set_temp(root, index, temp_c)


def set_temp(root: Path, index: int, temp_c: float) -> None:
    write_temp(root, index, f'{int(round(temp_c * 1000))}\n')


def write_temp(root: Path, index: int, text: str) -> None:
    # Write then rename, like the kernel's atomic attribute reads: the node never sees half a file.
    path = root / f'thermal_zone{index}' / 'temp'
    tmp = path.with_name('temp.new')
    tmp.write_text(text)
    tmp.replace(path)


def thermal_status(diags):
    """The latest thermal_monitor status on /diagnostics, or None."""
    for array in reversed(diags):
        for status in array.status:
            if status.name.startswith('thermal_monitor'):
                return status
    return None


def values(status):
    return {kv.key: kv.value for kv in status.values}


def start(processes, root: Path, **params):
    return processes.start('thermal_node', params=dict({'sysfs_root': str(root),
                                                        'period_s': 0.1}, **params))


@pytest.fixture
def sysfs(tmp_path):
    root = tmp_path / 'thermal'
    root.mkdir()
    return root


def test_hot_zone_sets_throttle_and_temperature(spinner, processes, sysfs):
    make_zone(sysfs, 0, 'cpu-thermal', 50.0)
    make_zone(sysfs, 1, 'gpu-thermal', 40.0)
    throttle = spinner.collect(UInt8, 'thermal/throttle', THROTTLE_QOS)
    temps = spinner.collect(Temperature, 'thermal/temperature', TEMPERATURE_QOS)
    node = start(processes, sysfs)

    spinner.until(lambda: throttle and temps, 10, 'first throttle and temperature')
    assert throttle[-1].data == 0
    assert temps[-1].header.frame_id == 'cpu-thermal'
    assert temps[-1].temperature == pytest.approx(50.0)

    set_temp(sysfs, 1, 81.5)
    spinner.until(lambda: throttle[-1].data == 2, 5, 'throttle level 2 after the gpu got hot')
    spinner.until(lambda: temps[-1].header.frame_id == 'gpu-thermal', 5, 'gpu temperature')
    assert temps[-1].temperature == pytest.approx(81.5)
    assert temps[-1].variance == 0.0
    assert temps[-1].header.stamp.sec > 0
    assert all(m.data in (0, 2) for m in throttle)  # went straight from 0 to 2

    reason = 'gpu-thermal at 81.5 °C >= hot_c 80.0'
    spinner.until(lambda: reason in node.log(), 5, 'the level change in the log')
    spinner.spin_for(0.5)  # several more polls at the same level
    assert node.log().count(reason) == 1
    assert node.alive()


def test_late_subscriber_gets_current_level(spinner, processes, sysfs):
    make_zone(sysfs, 0, 'tj-thermal', 92.0)
    # A long period: within this test only the start-up publish exists, so a late subscriber
    # can only get it through transient-local durability.
    start(processes, sysfs, period_s=30.0)
    spinner.until(lambda: spinner.node.count_publishers('thermal/throttle') > 0, 10,
                  'the throttle publisher')
    spinner.spin_for(1.0)
    volatile = spinner.collect(UInt8, 'thermal/throttle',
                               QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    late = spinner.collect(UInt8, 'thermal/throttle', THROTTLE_QOS)
    spinner.until(lambda: late, 5, 'the latched throttle level')
    assert [m.data for m in late] == [3]
    spinner.spin_for(1.0)
    assert volatile == []  # nothing was re-published: `late` really came from durability


def test_broken_zone_mid_run_is_a_warning_not_a_crash(spinner, processes, sysfs):
    make_zone(sysfs, 0, 'cpu-thermal', 50.0)
    make_zone(sysfs, 1, 'gpu-thermal', 45.0)
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    temps = spinner.collect(Temperature, 'thermal/temperature', TEMPERATURE_QOS)
    throttle = spinner.collect(UInt8, 'thermal/throttle', THROTTLE_QOS)
    node = start(processes, sysfs)

    spinner.until(lambda: thermal_status(diags) is not None, 10, 'thermal diagnostics')
    status = thermal_status(diags)
    assert status.level == OK, status
    assert values(status)['thermal_zone0 (cpu-thermal)'] == '50.0'
    assert values(status)['thermal_zone1 (gpu-thermal)'] == '45.0'

    write_temp(sysfs, 1, 'not-a-number\n')
    spinner.until(lambda: thermal_status(diags).level == WARN, 5, 'WARN for the garbage zone')
    status = thermal_status(diags)
    assert values(status)['thermal_zone1 (gpu-thermal)'].startswith('garbage'), values(status)
    assert 'thermal_zone1' in status.message

    shutil.rmtree(sysfs / 'thermal_zone1')
    def zone1_missing():
        # Once the directory is gone its type cannot be read: match the zone by its name.
        return any(k.startswith('thermal_zone1') and v.startswith('missing')
                   for k, v in values(thermal_status(diags)).items())
    spinner.until(zone1_missing, 5, 'the vanished zone reported missing')
    assert thermal_status(diags).level == WARN

    count = len(throttle)
    spinner.spin_for(0.5)
    assert node.alive()
    assert len(throttle) > count and throttle[-1].data == 0
    assert temps[-1].header.frame_id == 'cpu-thermal'
    assert temps[-1].temperature == pytest.approx(50.0)


def test_no_zones_keeps_publishing_zero_and_diagnostics_stale(spinner, processes, sysfs):
    throttle = spinner.collect(UInt8, 'thermal/throttle', THROTTLE_QOS)
    temps = spinner.collect(Temperature, 'thermal/temperature', TEMPERATURE_QOS)
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    node = start(processes, sysfs)  # an empty directory

    spinner.until(lambda: len(throttle) >= 5, 10, 'five throttle messages')
    assert {m.data for m in throttle} == {0}
    spinner.until(lambda: thermal_status(diags) is not None, 5, 'thermal diagnostics')
    status = thermal_status(diags)
    assert status.level == STALE, status
    assert 'no thermal zones' in status.message
    assert temps == []
    assert node.alive()
    assert node.log().count('no thermal zones match') == 1  # said once, not every poll


@pytest.mark.parametrize('params, name', [
    ({'warm_c': 70.0, 'hot_c': 60.0}, 'hot_c'),
    ({'hot_c': 92.0, 'critical_c': 90.0}, 'critical_c'),
    ({'hysteresis_c': 45.0}, 'hysteresis_c'),
    ({'period_s': 0.0}, 'period_s'),
])
def test_bad_start_parameter_exits_with_code_2(processes, sysfs, params, name):
    make_zone(sysfs, 0, 'cpu-thermal', 50.0)
    node = start(processes, sysfs, **params)
    assert node.popen.wait(timeout=15) == 2
    log = node.log()
    assert name in log, log
    assert 'Traceback' not in log, log


def test_live_parameter_changes(spinner, processes, sysfs):
    make_zone(sysfs, 0, 'cpu-thermal', 50.0)
    throttle = spinner.collect(UInt8, 'thermal/throttle', THROTTLE_QOS)
    node = start(processes, sysfs)
    spinner.until(lambda: throttle, 10, 'the first throttle level')
    assert throttle[-1].data == 0

    client = AsyncParameterClient(spinner.node, 'thermal_monitor')
    assert client.wait_for_services(timeout_sec=5.0)

    def set_one(name, value):
        future = client.set_parameters([Parameter(name, value=value)])
        spinner.until(future.done, 5, f'the reply to setting {name}')
        (result,) = future.result().results
        return result

    refused = set_one('hot_c', 60.0)  # below warm_c 70
    assert not refused.successful
    assert 'warm_c' in refused.reason and 'hot_c' in refused.reason
    refused = set_one('hysteresis_c', 45.0)
    assert not refused.successful and 'hysteresis_c' in refused.reason
    refused = set_one('period_s', 'fast')
    assert not refused.successful

    future = client.get_parameters(['hot_c', 'hysteresis_c'])
    spinner.until(future.done, 5, 'get_parameters reply')
    assert [v.double_value for v in future.result().values] == [80.0, 3.0]

    assert set_one('period_s', 0.2).successful  # the poll timer is rebuilt
    count = len(throttle)
    spinner.spin_for(1.5)
    # ~7 polls at the new period (15 at the old one); loose bounds for a busy 2-core machine
    assert 2 <= len(throttle) - count <= 11, len(throttle) - count

    accepted = set_one('warm_c', 45.0)
    assert accepted.successful, accepted.reason
    spinner.until(lambda: throttle[-1].data == 1, 5, 'level 1 after lowering warm_c below 50 °C')
    spinner.until(lambda: 'cpu-thermal at 50.0 °C >= warm_c 45.0' in node.log(), 5,
                  'the reason in the log')
    assert node.alive()
