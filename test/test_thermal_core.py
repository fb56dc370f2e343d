"""edge_tracker.core.thermal against a fake /sys/class/thermal tree the tests rewrite."""

import shutil
from pathlib import Path

import pytest

from edge_tracker.core.thermal import (LevelMachine, ThermalMonitor, Thresholds, read_zone,
                                       thresholds_problem)


class FakeSysfs:
    def __init__(self, root: Path) -> None:
        self.root = root

    def zone(self, index: int, zone_type: str, temp_c: float) -> Path:
        path = self.root / f'thermal_zone{index}'
        path.mkdir(parents=True, exist_ok=True)
        (path / 'type').write_text(zone_type + '\n')
        self.set(index, temp_c)
        return path

    def set(self, index: int, temp_c: float) -> None:
        # sysfs format: integer millidegrees and a newline
        self.write(index, f'{int(round(temp_c * 1000))}\n')

    def write(self, index: int, text: str) -> None:
        (self.root / f'thermal_zone{index}' / 'temp').write_text(text)


@pytest.fixture
def sysfs(tmp_path):
    return FakeSysfs(tmp_path)


def monitor(sysfs: FakeSysfs, **kw) -> ThermalMonitor:
    return ThermalMonitor(sysfs_root=str(sysfs.root), **kw)


def test_reads_millidegrees_and_picks_hottest_zone(sysfs):
    sysfs.zone(0, 'cpu-thermal', 45.5)
    sysfs.zone(1, 'gpu-thermal', 52.25)
    sysfs.zone(2, 'soc0-thermal', 40.0)
    snap = monitor(sysfs).poll()
    assert snap.found
    assert [(z.zone, z.type, z.temp_c, z.status) for z in snap.zones] == [
        ('thermal_zone0', 'cpu-thermal', 45.5, 'ok'),
        ('thermal_zone1', 'gpu-thermal', 52.25, 'ok'),
        ('thermal_zone2', 'soc0-thermal', 40.0, 'ok')]
    assert snap.hottest_type == 'gpu-thermal'
    assert snap.hottest_c == pytest.approx(52.25)
    assert snap.level == 0 and not snap.changed and snap.reason is None


def test_zones_sorted_naturally_and_glob_respected(sysfs):
    for i in (10, 2, 0):
        sysfs.zone(i, f'z{i}', 30.0 + i)
    (sysfs.root / 'cooling_device0').mkdir()
    snap = monitor(sysfs).poll()
    assert [z.zone for z in snap.zones] == ['thermal_zone0', 'thermal_zone2', 'thermal_zone10']
    only = monitor(sysfs, zones='thermal_zone1*').poll()
    assert [z.zone for z in only.zones] == ['thermal_zone10']


def test_level_rises_through_each_level_and_falls_with_hysteresis(sysfs):
    sysfs.zone(0, 'cpu-thermal', 60.0)
    m = monitor(sysfs, warm_c=70.0, hot_c=80.0, critical_c=90.0, hysteresis_c=3.0)
    seen = []
    for temp in (60, 70, 75, 80, 85, 90, 95,      # up: 0 0 1 1 2 2 3 3
                 88, 87.1, 87, 86.9, 78, 77, 76.9,  # down: hold 3 until < 87, 2 until < 77
                 67.5, 67, 66.9, 40):               # 1 until < 67
        sysfs.set(0, temp)
        snap = m.poll()
        seen.append((temp, snap.level))
    assert [lvl for _, lvl in seen] == [0, 1, 1, 2, 2, 3, 3,
                                        3, 3, 3, 2, 2, 2, 1,
                                        1, 1, 0, 0], seen


def test_change_reports_reason_once(sysfs):
    sysfs.zone(0, 'cpu-thermal', 50.0)
    m = monitor(sysfs)
    assert m.poll().reason is None
    sysfs.set(0, 81.2)
    snap = m.poll()
    assert snap.changed and snap.previous_level == 0 and snap.level == 2
    assert snap.reason == 'cpu-thermal at 81.2 °C >= hot_c 80.0'
    again = m.poll()
    assert not again.changed and again.reason is None and again.level == 2
    sysfs.set(0, 76.0)
    down = m.poll()
    assert down.changed and down.level == 1
    assert down.reason == 'cpu-thermal at 76.0 °C < hot_c 80.0 - hysteresis_c 3.0'


def test_no_flapping_when_oscillating_around_a_threshold(sysfs):
    sysfs.zone(0, 'cpu-thermal', 70.0)
    m = monitor(sysfs, hysteresis_c=3.0)
    changes = 0
    for i in range(40):
        sysfs.set(0, 80.0 + (1.0 if i % 2 == 0 else -1.0))  # 81, 79, 81, ...
        snap = m.poll()
        changes += snap.changed
        assert snap.level == 2
    assert changes == 1  # only the first rise
    # Without hysteresis the same signal does flap: the test above is not vacuous.
    flappy = monitor(sysfs, hysteresis_c=0.0)
    levels = []
    for i in range(6):
        sysfs.set(0, 80.0 + (1.0 if i % 2 == 0 else -1.0))
        levels.append(flappy.poll().level)
    assert levels == [2, 1, 2, 1, 2, 1]


def test_jumps_several_levels_at_once_both_ways(sysfs):
    sysfs.zone(0, 'tj-thermal', 50.0)
    m = monitor(sysfs)
    sysfs.set(0, 95.0)
    snap = m.poll()
    assert (snap.previous_level, snap.level) == (0, 3)
    assert snap.reason == 'tj-thermal at 95.0 °C >= critical_c 90.0'
    sysfs.set(0, 50.0)
    snap = m.poll()
    assert (snap.previous_level, snap.level) == (3, 0)
    assert 'warm_c 70.0' in snap.reason
    sysfs.set(0, 85.0)
    assert m.poll().level == 2
    sysfs.set(0, 72.0)  # below hot-3 but not below warm-3: 2 -> 1 only
    assert m.poll().level == 1


def test_garbage_and_vanished_zones_are_reported_not_raised(sysfs):
    sysfs.zone(0, 'cpu-thermal', 55.0)
    sysfs.zone(1, 'gpu-thermal', 85.0)
    sysfs.zone(2, 'soc0-thermal', 50.0)
    m = monitor(sysfs)
    assert m.poll().level == 2  # gpu drives it

    statuses = {}
    for text, kind in (('abc\n', 'garbage'), ('', 'garbage'), ('250000\n', 'implausible'),
                       ('-273150\n', 'implausible'), ('nan\n', 'implausible')):
        sysfs.write(1, text)
        snap = m.poll()
        gpu = snap.zones[1]
        assert gpu.temp_c is None and not gpu.ok
        assert gpu.status.startswith(kind + ':'), (text, gpu.status)
        assert snap.problems == [gpu]
        statuses[text] = gpu.status
        # The broken zone drops out; the valid ones still drive the level.
        assert snap.hottest_type == 'cpu-thermal' and snap.hottest_c == 55.0
    assert len(set(statuses.values())) == len(statuses)  # each says what was wrong
    assert m.level == 0  # 55 °C: fell from hot once the gpu reading was dropped

    (sysfs.root / 'thermal_zone0' / 'temp').unlink()  # temp file gone
    shutil.rmtree(sysfs.root / 'thermal_zone2')       # whole zone gone
    snap = m.poll()
    by_zone = {z.zone: z for z in snap.zones}
    assert by_zone['thermal_zone0'].status.startswith('missing')
    assert by_zone['thermal_zone2'].status.startswith('missing')
    assert by_zone['thermal_zone2'].type == 'soc0-thermal'  # remembered from before
    assert snap.found and snap.hottest is None and snap.level == 0

    sysfs.zone(2, 'soc0-thermal', 71.0)  # it comes back
    snap = m.poll()
    assert snap.zones[2].ok and snap.level == 1


def test_unreadable_type_falls_back_to_zone_name(sysfs):
    path = sysfs.zone(3, 'x', 42.0)
    (path / 'type').unlink()
    reading = read_zone(str(path))
    assert (reading.type, reading.temp_c, reading.ok) == ('thermal_zone3', 42.0, True)


def test_no_zones_means_not_found_and_level_zero(sysfs, tmp_path):
    m = ThermalMonitor(sysfs_root=str(tmp_path / 'does-not-exist'))
    snap = m.poll()
    assert not snap.found and snap.zones == [] and snap.hottest is None and snap.level == 0
    # Losing every reading while hot also goes back to 0, with a reason.
    sysfs.zone(0, 'cpu-thermal', 92.0)
    m.set_source(str(sysfs.root), 'thermal_zone*')
    assert m.poll().level == 3
    m.set_source(str(tmp_path / 'does-not-exist'), 'thermal_zone*')
    snap = m.poll()
    assert not snap.found and snap.level == 0 and snap.changed
    assert snap.reason == 'no valid temperature reading'


def test_reset_forgets_level_and_zones(sysfs):
    sysfs.zone(0, 'cpu-thermal', 95.0)
    sysfs.zone(1, 'gpu-thermal', 40.0)
    m = monitor(sysfs)
    assert m.poll().level == 3
    shutil.rmtree(sysfs.root / 'thermal_zone1')
    assert m.poll().problems
    m.reset()
    assert m.level == 0
    snap = m.poll()
    assert snap.problems == [] and snap.level == 3 and snap.changed


@pytest.mark.parametrize('kw, names', [
    (dict(warm_c=80.0, hot_c=80.0), ('hot_c', 'warm_c')),
    (dict(warm_c=75.0, hot_c=70.0), ('hot_c', 'warm_c')),
    (dict(hot_c=95.0, critical_c=90.0), ('critical_c', 'hot_c')),
    (dict(hysteresis_c=-1.0), ('hysteresis_c',)),
    (dict(critical_c=float('nan')), ('critical_c',)),
])
def test_threshold_validation(kw, names):
    with pytest.raises(ValueError) as err:
        Thresholds(**kw)
    for name in names:
        assert name in str(err.value)
    assert thresholds_problem(**dict(dict(warm_c=70.0, hot_c=80.0, critical_c=90.0,
                                          hysteresis_c=3.0), **kw)) == str(err.value)


def test_invalid_live_thresholds_change_nothing(sysfs):
    sysfs.zone(0, 'cpu-thermal', 75.0)
    m = monitor(sysfs)
    assert m.poll().level == 1
    with pytest.raises(ValueError, match='hot_c'):
        m.set_thresholds(70.0, 60.0, 90.0, 3.0)
    assert m.thresholds == Thresholds()
    m.set_thresholds(60.0, 74.0, 90.0, 3.0)  # valid: 75 °C is now hot
    assert m.poll().level == 2
    with pytest.raises(ValueError, match='zones'):
        m.set_source(str(sysfs.root), '')


def test_level_machine_without_sysfs():
    lm = LevelMachine(Thresholds(warm_c=10.0, hot_c=20.0, critical_c=30.0, hysteresis_c=0.0))
    assert lm.update(10.0) == 'temperature at 10.0 °C >= warm_c 10.0'
    assert lm.update(9.99) is not None and lm.level == 0
    assert lm.update(None) is None  # already 0: no change to report
