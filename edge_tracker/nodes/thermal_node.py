"""thermal_monitor: publishes the hottest thermal zone and a throttle level (0..3) for the detector.

Topics (relative, so a namespace works): `thermal/temperature` (sensor_msgs/Temperature of the
hottest zone, frame_id = its type name; not published while no zone reads), `thermal/throttle`
(std_msgs/UInt8, transient local so a detector started later gets the current level at once;
published every poll) and one /diagnostics status listing every zone.

Threshold parameters can be changed live one at a time as long as warm_c < hot_c < critical_c
still holds; to move several past each other, use set_parameters_atomically.
"""

from typing import Any, Dict, Optional

from rclpy.node import Node
from sensor_msgs.msg import Temperature
from std_msgs.msg import UInt8

from edge_tracker.core import stats
from edge_tracker.core.thermal import (LEVEL_NAMES, ThermalMonitor, ThermalSnapshot,
                                       thresholds_problem)
from edge_tracker.diagnostics import Diagnostics
from edge_tracker.node_main import main_for, steady_timer
from edge_tracker.params import P, ParameterError, declare
from edge_tracker.qos import latched_qos, state_qos

THRESHOLDS = ('warm_c', 'hot_c', 'critical_c', 'hysteresis_c')
_TEMP_RANGE = (-50.0, 200.0)  # same band core/thermal.py trusts a sensor within


def _non_empty(value: Any) -> Optional[str]:
    return None if str(value).strip() else 'must not be empty'


PARAMS = (
    P('zones', 'thermal_zone*', 'glob of zone directories under sysfs_root', check=_non_empty),
    P('sysfs_root', '/sys/class/thermal', 'directory holding the thermal zones',
      check=_non_empty),
    P('warm_c', 70.0, '°C from which the level is 1 (warm)', *_TEMP_RANGE),
    P('hot_c', 80.0, '°C from which the level is 2 (hot)', *_TEMP_RANGE),
    P('critical_c', 90.0, '°C from which the level is 3 (critical)', *_TEMP_RANGE),
    P('hysteresis_c', 3.0, 'a level drops only this far below its threshold', 0.0, 30.0),
    P('period_s', 1.0, 'seconds between polls', 0.05, 60.0),
)

# Diagnostic level for each throttle level: hot and critical mean the pipeline is degraded.
_DIAG_LEVEL = (stats.OK, stats.WARN, stats.ERROR, stats.ERROR)


class ThermalNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__('thermal_monitor', **node_kwargs)
        self._params = declare(self, PARAMS, self._on_change)
        p = self._params
        reason = thresholds_problem(p.warm_c, p.hot_c, p.critical_c, p.hysteresis_c)
        if reason:
            raise ParameterError(reason)
        self._monitor = ThermalMonitor(p.sysfs_root, p.zones, p.warm_c, p.hot_c, p.critical_c,
                                       p.hysteresis_c)
        self._snapshot: Optional[ThermalSnapshot] = None
        self._warned_no_zones = False
        self._zone_status: Dict[str, str] = {}

        self._temp_pub = self.create_publisher(Temperature, 'thermal/temperature', state_qos())
        self._throttle_pub = self.create_publisher(UInt8, 'thermal/throttle', latched_qos())
        # Diagnostics keep their own 1 s rhythm: a slow poll must not make aggregators see STALE.
        self._diagnostics = Diagnostics(self, period_s=1.0, hardware_id=p.sysfs_root)
        self._diagnostics.add('thermal', self._report)
        self._timer = steady_timer(self, p.period_s, self._poll)
        self._poll()  # the latched level exists from the first moment, not one period later

    # ---- parameters ---------------------------------------------------------------------

    def _on_change(self, changes: Dict[str, Any]) -> Optional[str]:
        merged = dict(self._params.as_dict(), **changes)
        if any(name in changes for name in THRESHOLDS):
            reason = thresholds_problem(*(merged[name] for name in THRESHOLDS))
            if reason:
                return reason
            self._monitor.set_thresholds(*(float(merged[name]) for name in THRESHOLDS))
        if 'zones' in changes or 'sysfs_root' in changes:
            self._monitor.set_source(merged['sysfs_root'], merged['zones'])
            self._warned_no_zones = False
            self._zone_status.clear()
        if 'period_s' in changes:
            self._timer.cancel()
            self.destroy_timer(self._timer)
            self._timer = steady_timer(self, float(merged['period_s']), self._poll)
        return None

    # ---- polling ------------------------------------------------------------------------

    def _poll(self) -> None:
        snap = self._monitor.poll()
        self._snapshot = snap
        self._log(snap)
        if snap.hottest is not None:
            msg = Temperature()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.header.frame_id = snap.hottest.type
            msg.temperature = float(snap.hottest.temp_c)
            msg.variance = 0.0  # unknown; sysfs gives no accuracy
            self._temp_pub.publish(msg)
        self._throttle_pub.publish(UInt8(data=snap.level))

    def _log(self, snap: ThermalSnapshot) -> None:
        log = self.get_logger()
        if snap.changed:
            text = (f'throttle level {snap.previous_level} -> {snap.level} '
                    f'({LEVEL_NAMES[snap.level]}): {snap.reason}')
            if snap.level == 3:
                log.error(text)
            elif snap.level > snap.previous_level:
                log.warning(text)
            else:
                log.info(text)
        if not snap.found:
            if not self._warned_no_zones:
                log.warning(f'no thermal zones match {self._glob()}; publishing throttle level 0 '
                            'until some appear')
                self._warned_no_zones = True
        elif self._warned_no_zones:
            log.info(f'thermal zones found: {", ".join(z.zone for z in snap.zones)}')
            self._warned_no_zones = False
        # Each zone's trouble is logged when it starts and when it ends, not every poll.
        for zone in snap.zones:
            before = self._zone_status.get(zone.zone, 'ok')
            if zone.status != before:
                if zone.ok:
                    log.info(f'{zone.zone} ({zone.type}) reads again: {zone.temp_c:.1f} °C')
                else:
                    log.warning(f'{zone.zone} ({zone.type}): {zone.status}')
            self._zone_status[zone.zone] = zone.status

    def _glob(self) -> str:
        return f'{self._monitor.sysfs_root.rstrip("/")}/{self._monitor.zones}'

    # ---- diagnostics --------------------------------------------------------------------

    def _report(self):
        snap = self._snapshot
        t = self._monitor.thresholds
        values: Dict[str, object] = {'warm_c': t.warm_c, 'hot_c': t.hot_c,
                                     'critical_c': t.critical_c, 'hysteresis_c': t.hysteresis_c}
        if snap is None:
            return stats.STALE, 'no poll yet', values
        values['level'] = snap.level
        values['hottest'] = snap.hottest_type or ''
        for zone in snap.zones:
            values[f'{zone.zone} ({zone.type})'] = \
                f'{zone.temp_c:.1f}' if zone.ok else zone.status
        if not snap.found:
            return stats.STALE, f'no thermal zones match {self._glob()}', values
        if snap.hottest is None:
            return stats.STALE, f'no zone gives a valid reading ({len(snap.zones)} zones)', values
        message = f'{snap.level_name}: {snap.hottest.type} {snap.hottest.temp_c:.1f} °C'
        level = _DIAG_LEVEL[snap.level]
        if snap.problems:
            level = max(level, stats.WARN)
            message += '; ' + ', '.join(f'{z.zone} {z.status.split(":")[0]}'
                                        for z in snap.problems)
        return level, message, values


main = main_for(ThermalNode)
