"""Thin rclpy nodes: parameters, topics and QoS around edge_tracker.core."""
