# Every target sets up what it needs: `make test` and `make demo` work on a fresh clone.
SHELL := /bin/bash
ENV := set +u; source scripts/env.sh && set -u && export YOLO_OFFLINE=1
JAZZY_ENV := set +u; export EDGE_TRACKER_ENV=jazzy && source scripts/env.sh && set -u
PYTEST_ARGS ?=
DEMO_ARGS ?=
# The node-level tests that need no model (camera, tracker, thermal, conversions, parameters,
# launch plan, shutdown, the detector's frame notices with a stand-in model), run a second time
# against ROS 2 Jazzy with a Jazzy robot's numpy 1.x.
JAZZY_TESTS := test/test_conversions.py test/test_thermal_core.py test/test_thermal_node.py \
	test/test_adaptive_core.py test/test_tracker_properties.py test/test_vision_msgs_wire.py \
	test/test_launch.py test/test_faults.py test/test_pipeline.py test/test_sim_time.py \
	test/test_enable_reset.py test/test_compressed.py test/test_pacing.py test/test_parallel_core.py \
	test/test_cascade.py test/test_jazzy.py test/test_parallel_ros.py
JAZZY_SELECT := not runs_as_processes and not hardware and not jetson and not pipeline_runs \
	and not model and not detector and not inference and not camera_detector_tracker \
	and not keeps_three_ids and not replay and not full_size_images and not processes_of_their_own

.PHONY: env env-jazzy test test-main test-jazzy demo clean

env:
	@bash scripts/bootstrap.sh

env-jazzy:
	@bash scripts/bootstrap.sh jazzy

test: test-main test-jazzy

test-main: env
	@$(ENV) && python -m pytest test $(PYTEST_ARGS)

test-jazzy: env-jazzy
	@$(JAZZY_ENV) && echo "== the same nodes on ROS 2 $$(python -c 'import rclpy, importlib.metadata as m; print("Jazzy, rclpy", m.version("ros-rclpy"), "numpy", m.version("numpy"))')" \
		&& python -m pytest $(JAZZY_TESTS) -k "$(JAZZY_SELECT)" $(PYTEST_ARGS)

demo: env
	@$(ENV) && python -m edge_tracker.tools.demo $(DEMO_ARGS)

clean:
	rm -rf build install install-jazzy log out .venv .venv-jazzy
