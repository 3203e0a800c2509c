"""Package discovery for the layout where the repository root *is* the package ``tfbsim``.

pyproject.toml holds all metadata; ``[tool.setuptools.packages.find]`` cannot prefix the packages it finds
with ``tfbsim.``, so this file lists every subpackage it finds under the root (those with an ``__init__.py``,
outside tests/bench/examples), so that no subpackage is ever left out of a wheel.
"""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class _BuildPy(build_py):
    """Leave this file out of the wheel (it sits in the package's root folder)."""

    def find_package_modules(self, package, package_dir):  # noqa: D102
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not (m[0] == "tfbsim" and m[1] == "setup")]


if __name__ == "__main__":
    subpackages = find_packages(".", exclude=["tests", "tests.*", "bench", "examples", "build", "build.*"])
    setup(packages=["tfbsim", *(f"tfbsim.{name}" for name in subpackages)], cmdclass={"build_py": _BuildPy})
