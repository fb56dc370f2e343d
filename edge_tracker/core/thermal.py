"""Thermal zones read from sysfs and turned into a throttle level (ROS-free).

Linux exposes each sensor as `<sysfs_root>/thermal_zoneN/` with `temp` (millidegrees Celsius as
text) and `type` (a name such as cpu-thermal, gpu-thermal, soc0-thermal or tj-thermal). The
hottest valid zone drives a level: 0 normal, 1 warm, 2 hot, 3 critical, which the detector uses to
shed load before the firmware clocks the chip down on its own.

Nothing here raises for a bad zone: a vanished, unreadable or nonsensical zone is reported in its
`ZoneReading.status` and left out of the level, because one flaky sensor must not stop the others
from protecting the board.
"""

import glob
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

# Readings outside this band are sensor faults (disconnected probes read e.g. -273 °C or a raw
# register), not temperatures a board survives; trusting them would throttle or unthrottle wrongly.
MIN_PLAUSIBLE_C = -50.0
MAX_PLAUSIBLE_C = 200.0

LEVEL_NAMES = ('normal', 'warm', 'hot', 'critical')
NORMAL, WARM, HOT, CRITICAL = 0, 1, 2, 3

OK_STATUS = 'ok'


@dataclass(frozen=True)
class Thresholds:
    """Where the levels change, in °C.

    - `warm_c` (level 1): lower starts light load shedding earlier (cooler, but the pipeline gives
      up frame rate sooner); higher keeps full speed longer.
    - `hot_c` (level 2): lower protects the chip earlier at a larger cost in detection quality;
      higher risks reaching the firmware's own throttling, which slows everything at once.
    - `critical_c` (level 3): lower stops heavy work with more margin before a thermal shutdown;
      higher keeps working closer to that shutdown.
    - `hysteresis_c`: a level L drops only below threshold_L - hysteresis_c. Larger stops a
      temperature hovering at a threshold from flapping the level (and the detector's settings)
      but keeps the load shed longer after cooling; 0 follows the temperature exactly.
    """

    warm_c: float = 70.0
    hot_c: float = 80.0
    critical_c: float = 90.0
    hysteresis_c: float = 3.0

    def __post_init__(self) -> None:
        reason = thresholds_problem(self.warm_c, self.hot_c, self.critical_c, self.hysteresis_c)
        if reason:
            raise ValueError(reason)

    def for_level(self, level: int) -> Tuple[str, float]:
        """(parameter name, °C) of the threshold that enters `level` (1..3)."""
        return (('warm_c', self.warm_c), ('hot_c', self.hot_c),
                ('critical_c', self.critical_c))[level - 1]


def thresholds_problem(warm_c: float, hot_c: float, critical_c: float,
                       hysteresis_c: float) -> Optional[str]:
    """The reason these thresholds cannot work together, or None when they can."""
    values = {'warm_c': warm_c, 'hot_c': hot_c, 'critical_c': critical_c,
              'hysteresis_c': hysteresis_c}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            return f'{name} must be a finite number, got {value!r}'
    if not warm_c < hot_c:
        return f'hot_c ({hot_c}) must be above warm_c ({warm_c})'
    if not hot_c < critical_c:
        return f'critical_c ({critical_c}) must be above hot_c ({hot_c})'
    if hysteresis_c < 0:
        return f'hysteresis_c ({hysteresis_c}) must not be negative'
    return None


class LevelMachine:
    """Throttle level with hysteresis: immediate on the way up, delayed on the way down.

    Up: the level becomes the highest L whose threshold the temperature reaches (>=), so a jump
    from 60 to 95 °C goes straight from 0 to 3. Down: level L falls while the temperature is below
    threshold_L - hysteresis_c, so a fast cool-down can drop several levels in one update.
    """

    def __init__(self, thresholds: Optional[Thresholds] = None) -> None:
        self.thresholds = thresholds or Thresholds()
        self.level = NORMAL

    def set_thresholds(self, thresholds: Thresholds) -> None:
        """Takes effect at the next update; the level is kept until then (no jump without data)."""
        self.thresholds = thresholds

    def reset(self) -> None:
        self.level = NORMAL

    def update(self, temp_c: Optional[float], source: str = 'temperature') -> Optional[str]:
        """Feeds one temperature (None: no valid reading) and returns why the level changed, or
        None when it stayed. `source` names the sensor in that reason."""
        t = self.thresholds
        if temp_c is None:
            # No data: do not throttle on a guess (the caller reports the data as stale).
            if self.level == NORMAL:
                return None
            self.level = NORMAL
            return 'no valid temperature reading'
        reached = sum(1 for level in (WARM, HOT, CRITICAL) if temp_c >= t.for_level(level)[1])
        if reached > self.level:
            self.level = reached
            name, value = t.for_level(reached)
            return f'{source} at {temp_c:.1f} °C >= {name} {value:.1f}'
        old = self.level
        while self.level > NORMAL and temp_c < t.for_level(self.level)[1] - t.hysteresis_c:
            self.level -= 1
        if self.level == old:
            return None
        name, value = t.for_level(self.level + 1)  # the lowest threshold it fell below
        return (f'{source} at {temp_c:.1f} °C < {name} {value:.1f} - hysteresis_c '
                f'{t.hysteresis_c:.1f}')


@dataclass
class ZoneReading:
    """One zone in one poll. `temp_c` is None unless `status` is 'ok'."""

    zone: str                   # directory name, e.g. thermal_zone0
    type: str                   # sensor name from the `type` file (the zone name if unreadable)
    temp_c: Optional[float]
    status: str = OK_STATUS     # 'ok' or '<kind>: <detail>', kind one of missing/unreadable/
                                # garbage/implausible

    @property
    def ok(self) -> bool:
        return self.status == OK_STATUS


@dataclass
class ThermalSnapshot:
    """What one `ThermalMonitor.poll()` saw and decided."""

    zones: List[ZoneReading]
    found: bool                        # any zone matched (now or before: vanished ones count)
    level: int
    hottest: Optional[ZoneReading]     # the valid zone with the highest temperature
    changed: bool = False              # the level changed in this poll
    reason: Optional[str] = None       # why, when it changed
    previous_level: int = NORMAL
    problems: List[ZoneReading] = field(default_factory=list)

    @property
    def hottest_type(self) -> Optional[str]:
        return self.hottest.type if self.hottest else None

    @property
    def hottest_c(self) -> Optional[float]:
        return self.hottest.temp_c if self.hottest else None

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]


def _natural_key(path: str) -> List[object]:
    # thermal_zone2 before thermal_zone10
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', path)]


def _read_text(path: str) -> str:
    with open(path, 'r', encoding='ascii', errors='replace') as f:
        return f.read(64)  # a sysfs attribute is short; never slurp a huge garbage file


def read_zone(path: str) -> ZoneReading:
    """Reads one zone directory; never raises for a missing or broken zone."""
    zone = os.path.basename(os.path.normpath(path))
    try:
        zone_type = _read_text(os.path.join(path, 'type')).strip() or zone
    except OSError:
        zone_type = zone
    try:
        text = _read_text(os.path.join(path, 'temp')).strip()
    except FileNotFoundError:
        return ZoneReading(zone, zone_type, None, 'missing: no temp file')
    except OSError as exc:
        # Real drivers answer EIO/ENODATA/EAGAIN while a sensor is powered down.
        return ZoneReading(zone, zone_type, None, f'unreadable: {exc.strerror or exc}')
    if not text:
        return ZoneReading(zone, zone_type, None, 'garbage: empty temp file')
    try:
        milli = float(text)
    except ValueError:
        return ZoneReading(zone, zone_type, None, f'garbage: {text[:20]!r}')
    temp_c = milli / 1000.0
    if not MIN_PLAUSIBLE_C <= temp_c <= MAX_PLAUSIBLE_C:  # also rejects nan
        return ZoneReading(zone, zone_type, None, f'implausible: {temp_c:.1f} °C')
    return ZoneReading(zone, zone_type, temp_c)


class ThermalMonitor:
    """Reads every zone matching `zones` under `sysfs_root` and keeps the throttle level.

    A zone seen in an earlier poll that no longer exists is reported as 'missing' (a sensor
    dropping out is worth a warning) until `reset()` or `set_source()`.
    """

    def __init__(self, sysfs_root: str = '/sys/class/thermal', zones: str = 'thermal_zone*',
                 warm_c: float = 70.0, hot_c: float = 80.0, critical_c: float = 90.0,
                 hysteresis_c: float = 3.0) -> None:
        self.levels = LevelMachine(Thresholds(warm_c, hot_c, critical_c, hysteresis_c))
        self._known: Dict[str, str] = {}  # zone dir name -> last type seen
        self.set_source(sysfs_root, zones)

    @property
    def level(self) -> int:
        return self.levels.level

    @property
    def thresholds(self) -> Thresholds:
        return self.levels.thresholds

    def set_thresholds(self, warm_c: float, hot_c: float, critical_c: float,
                       hysteresis_c: float) -> None:
        """Raises ValueError (and changes nothing) for inconsistent thresholds."""
        self.levels.set_thresholds(Thresholds(warm_c, hot_c, critical_c, hysteresis_c))

    def set_source(self, sysfs_root: str, zones: str) -> None:
        if not zones or not zones.strip():
            raise ValueError('zones must be a non-empty glob such as thermal_zone*')
        self.sysfs_root = sysfs_root
        self.zones = zones
        self._known.clear()  # zones of another tree are not 'missing'

    def reset(self) -> None:
        """Back to level 0 with no memory of zones seen before."""
        self.levels.reset()
        self._known.clear()

    def read(self) -> List[ZoneReading]:
        paths = sorted((p for p in glob.glob(os.path.join(self.sysfs_root, self.zones))
                        if os.path.isdir(p)), key=_natural_key)
        readings = [read_zone(p) for p in paths]
        present = {r.zone for r in readings}
        for zone, zone_type in self._known.items():
            if zone not in present:
                readings.append(ZoneReading(zone, zone_type, None, 'missing: zone vanished'))
        for r in readings:
            self._known[r.zone] = r.type
        readings.sort(key=lambda r: _natural_key(r.zone))
        return readings

    def poll(self) -> ThermalSnapshot:
        readings = self.read()
        valid = [r for r in readings if r.ok]
        hottest = max(valid, key=lambda r: r.temp_c) if valid else None
        previous = self.levels.level
        reason = self.levels.update(hottest.temp_c if hottest else None,
                                    hottest.type if hottest else '')
        return ThermalSnapshot(zones=readings, found=bool(readings), level=self.levels.level,
                               hottest=hottest, changed=reason is not None, reason=reason,
                               previous_level=previous,
                               problems=[r for r in readings if not r.ok])
