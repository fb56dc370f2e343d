#!/usr/bin/env bash
# Makes the environment edge_tracker is developed, tested and demonstrated in, from nothing:
#   - with a ROS 2 distro sourced (ROS_DISTRO set and rclpy importable): a venv that sees the
#     distro's packages, plus the pip-only ML stack;
#   - without one: a venv with ROS 2 core from the PyPI wheels, the ML stack, and vision_msgs
#     built with colcon from scripts/vision_msgs (nothing on PyPI provides it).
# Then edge_tracker itself is built with colcon into ./install, exactly as on a robot.
#
# `bootstrap.sh jazzy` makes a second, torch-free environment instead: ROS 2 Jazzy from the
# ros-jazzy-* wheels with a Jazzy robot's numpy 1.x and OpenCV 4 (constraints/jazzy.txt), the
# stand-in vision_msgs built with Jazzy's generators, and the package built into ./install-jazzy
# (`make test-jazzy` runs the model-free node tests there).
#
# The venv (several GB, mostly torch) lives in a per-user cache keyed by the dependency lists, so
# fresh clones reuse it. A second run on a ready machine only re-runs the (seconds-long) colcon
# build of this package. Use `source scripts/env.sh` afterwards.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
log() { printf '[bootstrap] %s\n' "$*" >&2; }

cache_root=${EDGE_TRACKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edge_tracker}
flavour=${1:-main}
case "$flavour" in main|jazzy) ;; *) log "unknown environment '$flavour' (main or jazzy)"; exit 2 ;; esac
distro_mode=0
if [ "$flavour" = main ] && [ -n "${ROS_DISTRO:-}" ] && python3 -c 'import rclpy' 2>/dev/null; then
  distro_mode=1
fi

# The key covers everything that decides the venv's content.
stand_in=(scripts/vision_msgs/package.xml scripts/vision_msgs/CMakeLists.txt
          scripts/vision_msgs/msg/*.msg)
if [ "$flavour" = jazzy ]; then
  key_inputs=(scripts/requirements-jazzy.txt constraints/jazzy.txt scripts/bootstrap.sh
              "${stand_in[@]}")
  requirements=(-r scripts/requirements-jazzy.txt -c constraints/jazzy.txt)
  venv_link=.venv-jazzy install_base=install-jazzy build_base=build/jazzy prefix=jazzy
else
  key_inputs=(requirements.txt scripts/requirements-dev.txt scripts/bootstrap.sh)
  if [ "$distro_mode" = 0 ]; then
    key_inputs+=(scripts/requirements-ros.txt "${stand_in[@]}")
  fi
  requirements=(-r scripts/requirements-dev.txt)
  venv_link=.venv install_base=install build_base=build prefix=env
fi
key=$( { echo "distro=${ROS_DISTRO:-none}"; cat "${key_inputs[@]}"; } | sha256sum | cut -c1-16)
venv="$cache_root/$prefix-$key"

pick_python() {
  if [ "$distro_mode" = 1 ]; then command -v python3; return; fi
  # The ROS 2 wheels on PyPI are built for CPython 3.11.
  for p in python3.11 python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      command -v "$p"; return
    fi
  done
  log "CPython 3.11 is required for the ROS 2 wheels (found: $(python3 --version 2>&1))"; exit 1
}

build_venv() {
  local py; py=$(pick_python)
  log "creating $venv with $py (one-time; several minutes)"
  rm -rf "$venv"
  mkdir -p "$cache_root"
  if [ "$distro_mode" = 1 ]; then
    "$py" -m venv --system-site-packages "$venv"
  else
    "$py" -m venv "$venv"
  fi
  local pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
  "${pip[@]}" --upgrade pip wheel
  if [ "$flavour" = main ] && [ "$distro_mode" = 0 ]; then
    "${pip[@]}" -r scripts/requirements-ros.txt
  fi
  "${pip[@]}" "${requirements[@]}"
  if [ "$distro_mode" = 0 ]; then
    fix_wheel_cmake_paths
  fi
  # Ultralytics fetches Arial.ttf for plotting and training; a local font stops that.
  local font; font=$(find "$venv" -name DejaVuSans.ttf | head -n 1 || true)
  mkdir -p "$venv/ultralytics_config/Ultralytics"
  if [ -n "$font" ]; then
    cp "$font" "$venv/ultralytics_config/Ultralytics/Arial.ttf"
    cp "$font" "$venv/ultralytics_config/Ultralytics/Arial.Unicode.ttf"
  fi
  if [ "$distro_mode" = 0 ]; then
    build_vision_msgs
  fi
  touch "$venv/.complete"
  log "environment ready"
}

# The wheels' CMake configs name the wheel builder's Python paths; point them at this venv's.
fix_wheel_cmake_paths() {
  local inc npinc
  inc=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  npinc=$("$venv/bin/python" -c 'import numpy; print(numpy.get_include())')
  grep -rlF '/opt/python/cp311-cp311' "$venv/share" --include='*.cmake' 2>/dev/null | while read -r f; do
    sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$npinc#g" \
           -e "s#/opt/python/cp311-cp311/include/python3.11#$inc#g" "$f"
  done
}

build_vision_msgs() {
  log "building vision_msgs (test stand-in) with colcon"
  local ws="$venv/vision_msgs_ws"
  rm -rf "$ws"; mkdir -p "$ws/src"
  cp -r scripts/vision_msgs "$ws/src/vision_msgs"
  rm -f "$ws/src/vision_msgs/COLCON_IGNORE" "$ws/src/vision_msgs/AMENT_IGNORE"
  ( cd "$ws"
    export PATH="$venv/bin:$PATH" CMAKE_PREFIX_PATH="$venv" AMENT_PREFIX_PATH="$venv"
    "$venv/bin/colcon" build --event-handlers console_cohesion- --cmake-args \
      -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF > "$ws/build.log" 2>&1 \
      || { tail -n 40 "$ws/build.log" >&2; exit 1; } )
}

if [ ! -f "$venv/.complete" ]; then
  # One builder at a time per cache; others wait for it.
  mkdir -p "$cache_root"
  exec 9>"$cache_root/.lock"
  flock 9
  [ -f "$venv/.complete" ] || build_venv
  flock -u 9
fi
ln -sfn "$venv" "$venv_link"

# Build this package as colcon does on a robot (symlinked, so edits need no rebuild).
# shellcheck source=/dev/null
mkdir -p log
set +u  # colcon's setup scripts read unset variables
EDGE_TRACKER_SKIP_INSTALL=1 EDGE_TRACKER_ENV=$flavour source scripts/env.sh
if ! colcon build --symlink-install --event-handlers console_cohesion- \
     --build-base "$build_base" --install-base "$install_base" \
     --packages-select edge_tracker > "log/colcon-edge_tracker-$flavour.log" 2>&1; then
  tail -n 40 "log/colcon-edge_tracker-$flavour.log" >&2
  exit 1
fi
log "edge_tracker built into $repo/$install_base"
