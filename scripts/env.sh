# shellcheck shell=bash
# `source scripts/env.sh`: a shell with edge_tracker's environment, like `source install/setup.bash`
# on a robot. Made by scripts/bootstrap.sh (`make env`). EDGE_TRACKER_ENV=jazzy selects the
# torch-free Jazzy environment (`scripts/bootstrap.sh jazzy`) instead.
_et_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case "${EDGE_TRACKER_ENV:-main}" in
  jazzy) _et_venv="$_et_repo/.venv-jazzy" _et_install="$_et_repo/install-jazzy" ;;
  *) _et_venv="$_et_repo/.venv" _et_install="$_et_repo/install" ;;
esac
if [ ! -f "$_et_venv/bin/activate" ]; then
  echo "edge_tracker: no environment yet; run 'make env' (scripts/bootstrap.sh) first" >&2
  unset _et_repo _et_venv _et_install
  return 1 2>/dev/null || exit 1
fi
# shellcheck source=/dev/null
VIRTUAL_ENV_DISABLE_PROMPT=1 source "$_et_venv/bin/activate"
if [ -d "$VIRTUAL_ENV/vision_msgs_ws" ]; then
  # ROS 2 from the PyPI wheels: the venv prefix is laid out like a ROS install prefix.
  case ":${AMENT_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *)
    export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;; esac
  case ":${CMAKE_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *)
    export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}" ;; esac
  # shellcheck source=/dev/null
  source "$VIRTUAL_ENV/vision_msgs_ws/install/local_setup.bash"
fi
export YOLO_CONFIG_DIR="${YOLO_CONFIG_DIR:-$VIRTUAL_ENV/ultralytics_config}"
if [ -z "${EDGE_TRACKER_SKIP_INSTALL:-}" ] && [ -f "$_et_install/local_setup.bash" ]; then
  # shellcheck source=/dev/null
  source "$_et_install/local_setup.bash"
fi
# No `ros2 run` without ros2cli: put the package's executables on PATH instead.
if [ -d "$_et_install/edge_tracker/lib/edge_tracker" ]; then
  export PATH="$_et_install/edge_tracker/lib/edge_tracker:$PATH"
fi
unset _et_repo _et_venv _et_install
