"""The one potential factory: every model tfbsim runs is built here.

Spec forms accepted by :func:`load_potential`
-----------------------------------------------
``PATH``                       a MACE model file (pickled ``.model`` or TorchScript ``*_compiled.model``)
``bundled``                    tfbsim's own small MACE model (``workflows/potentials/models/``), sha256-verified
``bundled-<version>``          an earlier (or candidate) bundled model kept under its own name, e.g. ``bundled-v1``
                               (manifest ``models/bundled-<version>.json``), sha256-verified the same way
``mace-mp-0:small|medium|large``, ``mace-mpa-0:medium``, ``mace-omat-0:small|medium``
                               MACE foundation models: used from the mace cache folder if the file is there;
                               downloaded only with ``allow_download=True``; otherwise a
                               :class:`ModelNotFoundError` names the file and the folder to put it in
``chgnet``                     CHGNet 0.3.0, whose weights ship in the ``chgnet`` wheel (extra ``[chgnet]``)
``emt``, ``lj``                ASE's EMT and Lennard-Jones, for tests only

The spec and its options come either as a :class:`~tfbsim.workflows.potentials.config.PotentialConfig` (or a
mapping validated into one) or as a string plus keywords. Every calculator returned carries
``calc.parameters`` entries ``spec``, ``kind``, ``path``, ``sha256``, ``dtype``, ``device``, ``elements`` and
``r_max_ang``, and records the :class:`PotentialConfig` it was built from: :func:`potential_config_of` reads it
back (this module is the only place that knows where). :func:`check_coverage` must be called before any
evaluation (the MD runner and the CLI do), and fails naming the elements the model lacks.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator

from ...errors import ConfigError, ModelNotFoundError, PotentialError
from .config import PotentialConfig, as_potential_config
from .mace_backend import import_mace, load_mace_model, mace_model_summary, sha256_file

__all__ = [
    "load_potential",
    "potential_config_of",
    "check_coverage",
    "potential_info",
    "resolve_device",
    "FOUNDATION_MODELS",
    "BUNDLED_DIR",
    "bundled_versions",
    "mace_cache_dir",
]

logger = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent / "models"
_BUNDLED_MANIFEST = BUNDLED_DIR / "bundled.json"

_MP = "https://github.com/ACEsuit/mace-mp/releases/download"
#: Foundation models known by name -> release URL (the file name in the cache folder derives from it).
FOUNDATION_MODELS: dict[str, str] = {
    "mace-mp-0:small": f"{_MP}/mace_mp_0/2023-12-10-mace-128-L0_energy_epoch-249.model",
    "mace-mp-0:medium": f"{_MP}/mace_mp_0/2023-12-03-mace-128-L1_epoch-199.model",
    "mace-mp-0:large": f"{_MP}/mace_mp_0/MACE_MPtrj_2022.9.model",
    "mace-mpa-0:medium": f"{_MP}/mace_mpa_0/mace-mpa-0-medium.model",
    "mace-omat-0:small": f"{_MP}/mace_omat_0/mace-omat-0-small.model",
    "mace-omat-0:medium": f"{_MP}/mace_omat_0/mace-omat-0-medium.model",
}

#: The ``calc.parameters`` key under which the factory records the PotentialConfig a calculator was built from.
_CONFIG_KEY = "potential_config"

_EMT_ELEMENTS = ("H", "C", "N", "O", "Al", "Ni", "Cu", "Pd", "Ag", "Pt", "Au")


@dataclass(frozen=True)
class _Resolved:
    kind: str  # mace-file | bundled | mace-foundation | chgnet | emt | lj
    spec: str
    path: Path | None = None


def mace_cache_dir() -> Path:
    """The folder mace-torch uses for foundation models: ``$XDG_CACHE_HOME/mace`` or ``~/.cache/mace``."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mace"


def _cache_candidates(url: str) -> list[Path]:
    """Accepted cache file names: mace's own (alphanumerics and '_' of the basename) and the plain basename."""
    base = os.path.basename(url)
    mangled = "".join(c for c in base if c.isalnum() or c == "_")
    return [mace_cache_dir() / mangled, mace_cache_dir() / base]


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; other values are checked and returned."""
    if device == "auto":
        try:
            import torch
        except ImportError:
            return "cpu"
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" or device.startswith("cuda"):
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise PotentialError(f"device {device!r} requested but torch sees no CUDA GPU; use --device cpu")
        return device
    raise PotentialError(f"unknown device {device!r}; use auto, cpu or cuda[:N]")


def _resolve(spec: str) -> _Resolved:
    key = spec.strip()
    low = key.lower()
    if low in {"chgnet", "emt", "lj", "bundled"}:
        return _Resolved(low, low)
    if low.startswith("bundled-"):
        return _Resolved("bundled", low)
    if low in FOUNDATION_MODELS:
        return _Resolved("mace-foundation", low)
    if low.split(":")[0] in {"mace-mp-0", "mace-mpa-0", "mace-omat-0"}:
        raise PotentialError(
            f"unknown foundation model {spec!r}; known: {', '.join(FOUNDATION_MODELS)}"
        )
    path = Path(key).expanduser()
    if path.is_file():
        return _Resolved("mace-file", str(path), path.resolve())
    raise ModelNotFoundError(
        f"model {spec!r} is neither a file nor a known name; give a MACE model path or one of: "
        f"bundled, bundled-v1, chgnet, emt, lj, {', '.join(FOUNDATION_MODELS)}"
    )


def _foundation_path(spec: str, allow_download: bool) -> Path:
    url = FOUNDATION_MODELS[spec]
    candidates = _cache_candidates(url)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if not allow_download:
        raise ModelNotFoundError(
            f"{spec}: no local copy. Download {url} and place it as {candidates[0].name} in "
            f"{candidates[0].parent} (or pass --allow-download / allow_download=True), "
            "or give the file's path as the model"
        )
    target = candidates[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s -> %s (allow_download=True)", url, target)
    tmp = target.with_suffix(".part")
    try:
        urllib.request.urlretrieve(url, tmp)  # noqa: S310 - fixed https URL from FOUNDATION_MODELS
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelNotFoundError(
            f"{spec}: download of {url} failed ({exc}); place the file as {target.name} in {target.parent}"
        ) from exc
    return target


def bundled_versions() -> list[str]:
    """Names of the bundled models kept under their own name (``bundled-v1``, …), from their manifests."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("bundled-*.json"))


def _bundled_path(name: str = "bundled") -> tuple[Path, str]:
    manifest_path = _BUNDLED_MANIFEST if name == "bundled" else BUNDLED_DIR / f"{name}.json"
    if name != "bundled" and not manifest_path.is_file():
        raise ModelNotFoundError(f"no bundled model named {name!r} (no {manifest_path.name} in {BUNDLED_DIR}); "
                                 f"known: {', '.join(['bundled', *bundled_versions()])}")
    if not manifest_path.is_file():
        raise ModelNotFoundError(
            "the bundled model is not yet available in this installation "
            f"(no {manifest_path.name} in {BUNDLED_DIR}); use a MACE file, chgnet, or emt/lj for tests"
        )
    manifest = json.loads(manifest_path.read_text())
    path = BUNDLED_DIR / manifest["file"]
    if not path.is_file():
        raise ModelNotFoundError(f"bundled model file {path} is missing; reinstall tfbsim")
    digest = sha256_file(path)
    if digest != manifest["sha256"]:
        raise PotentialError(
            f"bundled model {path.name} has sha256 {digest[:12]}…, expected {manifest['sha256'][:12]}…; "
            "the file is corrupt or was replaced: reinstall tfbsim"
        )
    return path, digest


def _mace_calculator(path: Path, spec: str, kind: str, device: str, dtype: str, digest: str | None) -> Calculator:
    ns = import_mace()
    model = load_mace_model(path, device=device)
    summary = mace_model_summary(model)
    # MACECalculator logs notes through the root-logger functions (logging.info), which install a stderr handler
    # on the root logger when it has none (logging.basicConfig) and so print every later log line twice: keep
    # its notes quiet and take away any handler it added.
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.setLevel(logging.ERROR)
    try:
        calc = ns.MACECalculator(models=[model], device=device, default_dtype=dtype)
    finally:
        root.setLevel(level)
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
    calc.parameters.update(
        spec=spec,
        kind=kind,
        path=str(path),
        sha256=digest or sha256_file(path),
        dtype=dtype,
        device=device,
        elements=summary["elements"],
        r_max_ang=summary["r_max_ang"],
        n_params=summary["n_params"],
        mace_version=ns.version,
    )
    return calc


def _chgnet_calculator(device: str, dtype: str) -> Calculator:
    try:
        import chgnet
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator
    except ImportError as exc:
        raise PotentialError(
            "chgnet is not installed; install the optional extra: pip install 'tfbsim[chgnet]'"
        ) from exc
    if dtype != "float32":
        logger.warning("CHGNet runs in float32 internally; dtype=%s is recorded but not applied", dtype)
    noise = io.StringIO()
    with contextlib.redirect_stdout(noise):  # chgnet prints its device and model version
        model = CHGNet.load(model_name="0.3.0", use_device=device, verbose=False)
        calc = CHGNetCalculator(model=model, use_device=device)
    if noise.getvalue().strip():
        logger.debug("chgnet: %s", noise.getvalue().strip())
    weights = sorted((Path(chgnet.__file__).parent / "pretrained" / "0.3.0").glob("*.pth.tar"))
    from ase.data import chemical_symbols

    calc.parameters.update(
        spec="chgnet",
        kind="chgnet",
        path=str(weights[0]) if weights else None,
        sha256=sha256_file(weights[0]) if weights else None,
        dtype="float32",
        device=device,
        elements=chemical_symbols[1:95],
        r_max_ang=5.0,
        chgnet_version=getattr(chgnet, "__version__", None),
    )
    return calc


def _test_calculator(kind: str) -> Calculator:
    from ase.data import chemical_symbols

    if kind == "emt":
        from ase.calculators.emt import EMT

        calc: Calculator = EMT()
        elements = list(_EMT_ELEMENTS)
        r_max = 5.0
    else:
        from ase.calculators.lj import LennardJones

        calc = LennardJones(sigma=2.0, epsilon=0.01, rc=6.0, smooth=True)
        elements = chemical_symbols[1:]
        r_max = 6.0
    calc.parameters.update(
        spec=kind, kind=kind, path=None, sha256=None, dtype="float64", device="cpu",
        elements=elements, r_max_ang=r_max,
    )
    return calc


def _as_config(
    spec_or_config: str | PotentialConfig | Mapping[str, Any],
    device: str | None,
    dtype: str | None,
    allow_download: bool | None,
    *,
    default_device: str = "auto",
) -> PotentialConfig:
    """One :class:`PotentialConfig` from either a config (keywords not allowed) or a spec plus keywords."""
    keywords = {"device": device, "dtype": dtype, "allow_download": allow_download}
    if isinstance(spec_or_config, (PotentialConfig, Mapping)):
        given = sorted(k for k, v in keywords.items() if v is not None)
        if given:
            raise ConfigError(
                f"load_potential got a potential configuration and the keyword(s) {', '.join(given)}: give either "
                "a PotentialConfig (set device/dtype/allow_download in it, e.g. config.model_copy(update=...)) "
                "or a spec string with keywords, not both"
            )
        return as_potential_config(spec_or_config)
    if not isinstance(spec_or_config, str):
        raise ConfigError(
            f"load_potential needs a model spec string or a PotentialConfig, not {type(spec_or_config).__name__}"
        )
    dtype = "float32" if dtype is None else dtype
    if dtype not in {"float32", "float64"}:
        raise PotentialError(f"unknown dtype {dtype!r}; use float32 or float64")
    return as_potential_config(
        {"model": spec_or_config, "device": device or default_device, "dtype": dtype,
         "allow_download": bool(allow_download)},
        source="load_potential arguments",
    )


def load_potential(
    spec_or_config: str | PotentialConfig | Mapping[str, Any],
    *,
    device: str | None = None,
    dtype: str | None = None,
    allow_download: bool | None = None,
) -> Calculator:
    """Build the ASE calculator for a model (see the module docstring for the accepted specs).

    Parameters
    ----------
    spec_or_config
        A :class:`~tfbsim.workflows.potentials.config.PotentialConfig` (e.g. ``config.potential`` of an
        ``MDConfig``), a mapping validated into one, or a model path or name.
    device
        With a spec only: ``auto`` (default), ``cpu`` or ``cuda[:N]``.
    dtype
        With a spec only: ``float32`` (default) or ``float64`` (MACE models are converted; EMT/LJ are always
        float64, CHGNet always float32).
    allow_download
        With a spec only: allow fetching a named MACE foundation model that is not in the cache (default no).

    Returns
    -------
    ase.calculators.calculator.Calculator
        With provenance entries in ``calc.parameters`` and the configuration it was built from
        (:func:`potential_config_of`).

    Raises
    ------
    ConfigError
        A configuration together with keywords (put them in the configuration), or a configuration with an
        unknown key or a bad value.
    ModelNotFoundError
        The file or named model is not available locally (the message says where to put it).
    PotentialError
        The file is not a MACE model, the backend is not installed, the device is unavailable...
    """
    config = _as_config(spec_or_config, device, dtype, allow_download)
    calc = _build(config)
    params = calc.parameters
    recorded = PotentialConfig(model=str(params["spec"]), device=str(params["device"]), dtype=params["dtype"],
                               allow_download=config.allow_download)
    params[_CONFIG_KEY] = recorded.model_dump(mode="json")
    return calc


def _build(config: PotentialConfig) -> Calculator:
    resolved = _resolve(config.model)
    if resolved.kind in {"emt", "lj"}:
        return _test_calculator(resolved.kind)
    dev = resolve_device(config.device)
    dtype = config.dtype
    if resolved.kind == "chgnet":
        return _chgnet_calculator(dev, dtype)
    if resolved.kind == "bundled":
        path, digest = _bundled_path(resolved.spec)
        return _mace_calculator(path, resolved.spec, "bundled", dev, dtype, digest)
    if resolved.kind == "mace-foundation":
        path = _foundation_path(resolved.spec, config.allow_download)
        return _mace_calculator(path, resolved.spec, "mace-foundation", dev, dtype, None)
    assert resolved.path is not None
    return _mace_calculator(resolved.path, resolved.spec, "mace-file", dev, dtype, None)


def potential_config_of(calc: Calculator) -> PotentialConfig | None:
    """The :class:`PotentialConfig` that rebuilds ``calc``; ``None`` for a calculator the factory did not make.

    The model spec, the resolved device (``auto`` became ``cpu`` or ``cuda``), the dtype actually used (EMT and
    LJ are float64, CHGNet float32 whatever was asked) and ``allow_download`` as given:
    ``load_potential(potential_config_of(calc))`` builds the same potential again.
    """
    params = getattr(calc, "parameters", None) or {}
    recorded = params.get(_CONFIG_KEY)
    if not isinstance(recorded, Mapping):
        return None
    return PotentialConfig.model_validate(dict(recorded))


def check_coverage(calc: Calculator, atoms: Atoms | list[str] | set[str]) -> None:
    """Raise :class:`PotentialError` if ``atoms`` holds elements the potential was not built for."""
    symbols = set(atoms.get_chemical_symbols()) if isinstance(atoms, Atoms) else set(atoms)
    covered = set(calc.parameters.get("elements") or [])
    if not covered:
        return  # a foreign calculator: nothing to check against
    missing = sorted(symbols - covered)
    if missing:
        spec = calc.parameters.get("spec", type(calc).__name__)
        raise PotentialError(
            f"model {spec!r} does not cover element(s) {', '.join(missing)} "
            f"(it knows {', '.join(sorted(covered)) if len(covered) < 30 else f'{len(covered)} elements'}); "
            "choose a model trained on them"
        )


def potential_info(
    spec_or_config: str | PotentialConfig | Mapping[str, Any],
    *,
    device: str | None = None,
    dtype: str | None = None,
    allow_download: bool | None = None,
) -> dict[str, Any]:
    """What ``tfbsim potential info`` reports: spec, kind, elements, cutoff, parameter count, sha256, dtype.

    Takes what :func:`load_potential` takes, except that a spec string's device defaults to ``cpu``.
    """
    calc = load_potential(_as_config(spec_or_config, device, dtype, allow_download, default_device="cpu"))
    p = calc.parameters
    n_params = p.get("n_params")
    if n_params is None and p.get("kind") == "chgnet":
        n_params = int(sum(t.numel() for t in calc.model.parameters()))
    return {
        "spec": p["spec"],
        "kind": p["kind"],
        "elements": list(p["elements"]),
        "r_max_ang": p["r_max_ang"],
        "n_params": n_params,
        "sha256": p["sha256"],
        "dtype": p["dtype"],
        "device": p["device"],
        "path": p["path"],
    }
