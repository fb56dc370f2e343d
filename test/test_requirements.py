"""The robot install keeps the distro's numpy and OpenCV ABI: constraints per distro, checked
against the facts of each distro and against what the requirements' packages ask for."""

from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]

# Facts of each distro's Ubuntu: its Python, and the numpy and OpenCV its cv_bridge is built with.
DISTROS = {
    'humble': {'python': '3.10', 'numpy': '1.21.5', 'opencv': '4.5.4'},
    'jazzy': {'python': '3.12', 'numpy': '1.26.4', 'opencv': '4.6.0'},
    'kilted': {'python': '3.12', 'numpy': '1.26.4', 'opencv': '4.6.0'},
}
# Releases that break such a cv_bridge: numpy 2 (ABI), OpenCV 5 (cv2 type codes), and
# opencv-python 4.12, the first 4.x wheel that requires numpy 2.
BREAKING = {'numpy': ['2.0.0', '2.4.6'], 'opencv-python': ['4.12.0.88', '5.0.0.93']}
# Releases that keep it working (4.11.0.86: the last opencv-python built for numpy 1.x).
WORKING = {'numpy': '1.26.4', 'opencv-python': '4.11.0.86'}


def constraints(distro):
    out = {}
    for line in (REPO / 'constraints' / f'{distro}.txt').read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            req = Requirement(line)
            out[req.name] = req.specifier
    return out


def runtime_requirements():
    lines = (REPO / 'requirements.txt').read_text().splitlines()
    return [Requirement(line.split('#', 1)[0]) for line in lines if line.split('#', 1)[0].strip()]


def dependency_specs(package, name, python):
    """What the installed `package` asks of `name` on the given Python (its own metadata)."""
    env = dict(default_environment(), python_version=python, python_full_version=python + '.0',
               platform_system='Linux', extra='')
    try:
        reqs = [Requirement(r) for r in requires(package) or []]
    except PackageNotFoundError:
        pytest.fail(f'{package} (from requirements.txt) is not installed in this environment')
    return [r.specifier for r in reqs
            if r.name == name and (r.marker is None or r.marker.evaluate(env))]


@pytest.mark.parametrize('distro', sorted(DISTROS))
def test_constraints_keep_the_distros_numpy_and_opencv_abi(distro):
    spec = constraints(distro)
    assert set(spec) >= {'numpy', 'opencv-python'}
    for name, versions in BREAKING.items():
        for version in versions:
            assert not spec[name].contains(version, prereleases=True), (distro, name, version)
    for name, version in WORKING.items():
        assert spec[name].contains(version), (distro, name, version)
    # pip may upgrade numpy within 1.x: an extension built against an older numpy 1.x keeps
    # working with a newer one, never the other way round.
    assert Version(WORKING['numpy']) >= Version(DISTROS[distro]['numpy'])
    assert Version(WORKING['opencv-python'].rsplit('.', 1)[0]).major \
        == Version(DISTROS[distro]['opencv']).major


@pytest.mark.parametrize('distro', sorted(DISTROS))
def test_runtime_requirements_can_be_met_within_the_constraints(distro):
    """Every runtime requirement must accept the working numpy/OpenCV on the distro's Python:
    a package that insists on numpy 2 (roboflow trackers does) cannot go onto a robot."""
    python = DISTROS[distro]['python']
    for req in runtime_requirements():
        for name, version in WORKING.items():
            for spec in dependency_specs(req.name, name, python):
                assert spec.contains(version), \
                    f'{req.name} needs {name}{spec}: not installable beside {distro}\'s cv_bridge'


def test_a_numpy_2_only_package_would_be_caught():
    """The check above reads real metadata: trackers (dev only) asks for numpy >= 2."""
    specs = dependency_specs('trackers', 'numpy', '3.12')
    assert specs and not all(s.contains(WORKING['numpy']) for s in specs)
