"""QoS profiles of the contract (DESIGN.md), in one place."""

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy)

RELIABILITY_CHOICES = ('best_effort', 'reliable')


def image_qos(reliability: str = 'best_effort', depth: int = 1) -> QoSProfile:
    """Images: keep only the newest, best effort by default (a late frame is a useless frame)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliability == 'reliable'
        else ReliabilityPolicy.BEST_EFFORT)


def results_qos() -> QoSProfile:
    """detections and tracks: reliable, keep last 10."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                      reliability=ReliabilityPolicy.RELIABLE)


def notice_qos() -> QoSProfile:
    """detections/in_flight and detections/skipped: reliable, keep last 100. Every frame's
    notice counts (the tracker infers the detector's drops from the in-flight sequence), so a
    tracker stalled for a few seconds must find them all still queued."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                      reliability=ReliabilityPolicy.RELIABLE)


def latched_qos() -> QoSProfile:
    """State a late subscriber must still get (thermal/throttle)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def state_qos() -> QoSProfile:
    """Periodic state where only the latest value matters (thermal/temperature)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                      reliability=ReliabilityPolicy.RELIABLE)
