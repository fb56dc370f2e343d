"""Command-line tools (ROS-free): scene rendering, model training."""
