"""vision_msgs/Detection2DArray crosses processes and is wire-compatible with upstream 4.x."""

from vision_msgs.msg import Detection2DArray

# Type hash of upstream vision_msgs 4.1.1's Detection2DArray (ROS 2 type description, RIHS01).
UPSTREAM_HASH = 'RIHS01_214274120007f4a683866481336b70310268cfa107aebe9d594a6acf75bda968'

PUBLISHER = r'''
import rclpy
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose
rclpy.init()
node = rclpy.create_node('wire_publisher')
pub = node.create_publisher(Detection2DArray, 'wire_check', 10)
def send():
    msg = Detection2DArray()
    msg.header.frame_id = 'cam'
    msg.header.stamp.sec = 42
    d = Detection2D()
    d.id = '7'
    d.bbox.center.position.x = 100.5
    d.bbox.center.position.y = 50.25
    d.bbox.size_x = 20.0
    d.bbox.size_y = 10.0
    h = ObjectHypothesisWithPose()
    h.hypothesis.class_id = 'person'
    h.hypothesis.score = 0.875
    d.results.append(h)
    msg.detections.append(d)
    pub.publish(msg)
node.create_timer(0.1, send)
try:
    rclpy.spin(node)
except KeyboardInterrupt:
    pass
'''


def _hash_text(type_hash) -> str:
    # rclpy gives a TypeHash whose str() is the RIHS01_ string.
    return str(type_hash)


def test_detection2darray_between_processes_has_upstream_hash(spinner, processes):
    publisher = processes.python(PUBLISHER, 'wire_publisher')
    received = spinner.collect(Detection2DArray, 'wire_check')
    spinner.until(lambda: received, 20, 'a Detection2DArray from the other process')
    msg = received[0]
    assert msg.header.frame_id == 'cam' and msg.header.stamp.sec == 42
    d = msg.detections[0]
    assert d.id == '7'
    assert (d.bbox.center.position.x, d.bbox.center.position.y) == (100.5, 50.25)
    assert (d.bbox.size_x, d.bbox.size_y) == (20.0, 10.0)
    assert d.results[0].hypothesis.class_id == 'person'
    assert d.results[0].hypothesis.score == 0.875

    infos = spinner.node.get_publishers_info_by_topic('wire_check')
    assert infos, 'publisher not visible on the graph'
    assert infos[0].topic_type == 'vision_msgs/msg/Detection2DArray'
    assert _hash_text(infos[0].topic_type_hash) == UPSTREAM_HASH
    assert publisher.alive()
