"""label_info (vision_msgs/LabelInfo): the detector's class map, latched for late subscribers,
wire-compatible with upstream vision_msgs 4.1.1 (type hashes), across processes."""

import json
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from vision_msgs.msg import LabelInfo

from edge_tracker.qos import latched_qos
from test_compressed import SHAPES_MODEL
from test_faults import set_parameters
from test_pipeline import diagnostic_values

# Type hashes of upstream vision_msgs 4.1.1 (ROS 2 type description, RIHS01).
UPSTREAM_LABEL_INFO = 'RIHS01_3d37df4015cdf660cc851c51897f2acd957e1ca6205ba0a99aebffb9406b0783'
UPSTREAM_VISION_CLASS = 'RIHS01_1e4a11f0fed50b5623cb8ff26ca0e37952a48a9c074d16f804b44e9164c2037a'


def test_label_info_reaches_a_late_subscriber_with_upstream_hashes(spinner, processes):
    processes.start('detector_node', dict(SHAPES_MODEL, conf=0.4))
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    # The detector publishes label_info once its model is loaded, before its diagnostics start:
    # subscribing after those arrive makes this subscriber a late joiner.
    spinner.until(lambda: diagnostic_values(diags, 'detector') is not None, 90,
                  'the detector up (model loaded)')
    received = spinner.collect(LabelInfo, 'label_info', latched_qos())
    spinner.until(lambda: received, 10, 'label_info for a late subscriber (transient local)')
    msg = received[0]
    assert [(c.class_id, c.class_name) for c in msg.class_map] == \
        [(0, 'circle'), (1, 'square'), (2, 'triangle')]
    assert msg.threshold == pytest.approx(0.4)
    assert msg.header.stamp.sec > 0

    infos = spinner.node.get_publishers_info_by_topic('label_info')
    assert [i.node_name for i in infos] == ['detector']
    assert infos[0].topic_type == 'vision_msgs/msg/LabelInfo'
    assert str(infos[0].topic_type_hash) == UPSTREAM_LABEL_INFO
    qos = infos[0].qos_profile  # (the history depth is not announced in discovery)
    assert (qos.durability.name, qos.reliability.name) == ('TRANSIENT_LOCAL', 'RELIABLE')

    # A live threshold change is published again.
    assert set_parameters(spinner, 'detector', conf=0.55)[0].successful
    spinner.until(lambda: len(received) >= 2, 10, 'label_info after conf changed')
    assert received[-1].threshold == pytest.approx(0.55)
    assert len(received[-1].class_map) == 3


def test_vision_class_definition_has_upstream_hash():
    """VisionClass travels only inside LabelInfo, so its own hash is read where rosidl wrote
    it: the type description of the vision_msgs on the path (stand-in or upstream)."""
    from ament_index_python.packages import get_package_share_directory
    share = Path(get_package_share_directory('vision_msgs')) / 'msg'
    hashes = {}
    for name in ('VisionClass', 'LabelInfo'):
        doc = json.loads((share / f'{name}.json').read_text())
        hashes.update({h['type_name']: h['hash_string'] for h in doc['type_hashes']})
    assert hashes['vision_msgs/msg/VisionClass'] == UPSTREAM_VISION_CLASS
    assert hashes['vision_msgs/msg/LabelInfo'] == UPSTREAM_LABEL_INFO
