"""The wheel works on its own: built from the source tree, installed into a fresh virtual environment (no
editable install), it holds every subpackage and the bundled model, and its CLI runs.

The fresh environment gets the dependencies (torch, mace, ase, ...) by a path entry to this environment's
site-packages, without processing that folder's ``.pth`` files — so the editable install of the checkout is
*not* visible there and ``import tfbsim`` can only find the installed wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOT_SHIPPED = {"tests", "bench", "examples", "build", ".venv", ".git", "demo_out", "runs", "model_work"}


def _source_packages() -> set[str]:
    """Every folder of the source tree with an __init__.py, as a dotted tfbsim package name."""
    found = {"tfbsim"}
    for init in REPO.rglob("__init__.py"):
        rel = init.parent.relative_to(REPO)
        if rel.parts and (rel.parts[0] in NOT_SHIPPED or rel.parts[0].startswith(".")):
            continue
        found.add(".".join(("tfbsim", *rel.parts)))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the tracked source tree (the checkout is left as it is)."""
    src = tmp_path_factory.mktemp("src") / "tfbsim-src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(src)], check=True, capture_output=True, text=True)
    (whl,) = out.glob("tfbsim-*.whl")
    return whl


@pytest.fixture(scope="module")
def fresh_env(wheel, tmp_path_factory) -> Path:
    """A new virtual environment with the wheel installed (no editable install); returns its bin folder."""
    root = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=False).create(root)
    python = root / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # dependencies from this environment, as a plain path entry (its .pth files, e.g. the editable finder of
    # the checkout, are not processed)
    (Path(site) / "deps_from_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, text=True)
    return root / "bin"


def test_the_wheel_holds_every_subpackage_and_the_bundled_model(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {os.path.dirname(n).replace("/", ".") for n in names if n.endswith("/__init__.py")}
    shipped |= {"tfbsim"} if "tfbsim/__init__.py" in names else set()
    assert _source_packages() <= shipped, f"missing from the wheel: {sorted(_source_packages() - shipped)}"
    for data in ("bundled.model", "bundled.json", "MODEL_CARD.md"):
        assert f"tfbsim/workflows/potentials/models/{data}" in names
    assert "tfbsim/setup.py" not in names  # the build helper is not a module of the package
    assert not any(n.startswith(("tfbsim/tests/", "tfbsim/bench/")) for n in names)


def _run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_installed_wheel_runs_the_cli(fresh_env, tmp_path):
    where = _run(fresh_env, str(fresh_env / "python"), "-c", "import tfbsim; print(tfbsim.__file__)", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert str(fresh_env.parent) in where.stdout, f"tfbsim imported from outside the fresh env: {where.stdout}"

    helped = _run(fresh_env, str(fresh_env / "tfbsim"), "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    for group in ("build", "analyze", "md", "run", "demo", "potential"):
        assert group in helped.stdout

    info = _run(fresh_env, str(fresh_env / "tfbsim"), "potential", "info", "bundled", "--json", "info.json",
                cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "sha256" in (tmp_path / "info.json").read_text()

    built = _run(fresh_env, str(fresh_env / "tfbsim"), "build", "crystal", "li3po4", "-o", "li3po4.extxyz",
                 cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "li3po4.extxyz").stat().st_size > 0
