"""ROS-free logic of edge_tracker: importable and testable without rclpy or message packages."""
