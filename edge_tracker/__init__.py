"""edge_tracker: camera -> YOLO detector -> ByteTrack tracker as ROS 2 nodes, for edge computers."""

__version__ = '0.1.0'
