"""Everything that touches mace-torch / e3nn directly: imports, model files, random models.

The e3nn / torch weights-only quirk
-----------------------------------
mace-torch pins ``e3nn==0.4.4``, whose ``import e3nn.o3`` calls ``torch.load`` on its own constants file;
under torch >= 2.6 that fails (``Weights only load failed ... GLOBAL slice``) unless
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` is set. ``mace/__init__.py`` sets that variable *process-wide* at
import, which would silently turn every later ``torch.load`` in the user's process into an unsafe pickle
load. :func:`import_mace` is the only place tfbsim imports mace or e3nn: it sets the variable for the
duration of the imports and then restores the caller's environment. Model files are then loaded explicitly
with ``weights_only=False`` (MACE files are pickled modules) — and only files the user named, or the
bundled file after its sha256 was checked.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ...errors import ModelNotFoundError, PotentialError

__all__ = [
    "import_mace",
    "import_mace_module",
    "load_mace_model",
    "mace_model_summary",
    "sha256_file",
    "build_random_mace",
    "MACE_PRESETS",
]

logger = logging.getLogger(__name__)

_ENV = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"

#: Architectures of the random/trainable presets (see also ``workflows/training``).
MACE_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"num_interactions": 1, "hidden_irreps": "16x0e", "correlation": 3, "mlp_irreps": "16x0e"},
    "small": {"num_interactions": 2, "hidden_irreps": "32x0e", "correlation": 3, "mlp_irreps": "16x0e"},
    "medium": {"num_interactions": 2, "hidden_irreps": "32x0e + 32x1o", "correlation": 3, "mlp_irreps": "16x0e"},
}


@contextlib.contextmanager
def _weights_only_quirk() -> Iterator[None]:
    """Set ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` and silence mace's import warnings for the block only.

    The environment variable is restored afterwards (see module docstring).
    """
    previous = os.environ.get(_ENV)
    os.environ[_ENV] = "1"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*cuequivariance.*")
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.jit.*")
            warnings.filterwarnings("ignore", message=".*TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD.*")
            yield
    finally:
        if previous is None:
            os.environ.pop(_ENV, None)
        else:
            os.environ[_ENV] = previous


@functools.lru_cache(maxsize=1)
def import_mace() -> SimpleNamespace:
    """Import mace-torch and e3nn with the weights-only quirk contained (see module docstring).

    Returns
    -------
    SimpleNamespace
        ``torch``, ``o3`` (e3nn.o3), ``modules`` (mace.modules), ``MACECalculator``, ``version``.

    Raises
    ------
    PotentialError
        mace-torch is not installed.
    """
    try:
        with _weights_only_quirk():
            # mace logs "cuequivariance ... not available" on the root logger at import; silence that one.
            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)
            noise = io.StringIO()
            try:
                with contextlib.redirect_stdout(noise):  # mace prints a cuequivariance note at import
                    import mace
                    import torch
                    from e3nn import o3
                    from mace import modules
                    from mace.calculators import MACECalculator
            finally:
                root.setLevel(level)
            if noise.getvalue().strip():
                logger.debug("mace import: %s", noise.getvalue().strip())
    except ImportError as exc:
        raise PotentialError(
            f"mace-torch is not importable ({exc}); install it with `pip install torch==2.13.0 mace-torch`"
        ) from exc
    return SimpleNamespace(
        torch=torch, o3=o3, modules=modules, MACECalculator=MACECalculator, version=mace.__version__
    )


def import_mace_module(name: str) -> Any:
    """Import a submodule of mace-torch / e3nn / torch (e.g. ``mace.cli.convert_e3nn_cueq``) with the
    weights-only quirk contained, as :func:`import_mace` does; ``name`` must start with ``mace``, ``e3nn``
    or ``torch``."""
    import importlib

    if name.split(".")[0] not in {"mace", "e3nn", "torch"}:
        raise ValueError(f"import_mace_module imports mace/e3nn/torch modules only, not {name!r}")
    import_mace()
    with _weights_only_quirk():
        return importlib.import_module(name)


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def load_mace_model(path: str | os.PathLike, device: str = "cpu") -> Any:
    """Load a MACE model file (pickled ``.model`` or TorchScript ``*_compiled.model``) onto ``device``.

    This unpickles arbitrary code: call it only with files the user named or verified bundled files.
    """
    mace_ns = import_mace()
    torch = mace_ns.torch
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: MACE model file not found; check the path")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = torch.load(path, map_location=device, weights_only=False)
        except Exception as exc:  # torch raises many types for a bad file
            raise PotentialError(
                f"{path}: not a loadable MACE model ({type(exc).__name__}: {exc}); "
                "pass a file written by mace_run_train or torch.save(model)"
            ) from exc
    if not hasattr(model, "atomic_numbers") or not hasattr(model, "r_max"):
        raise PotentialError(f"{path}: the file holds a {type(model).__name__}, not a MACE model")
    return model


def mace_model_summary(model: Any) -> dict[str, Any]:
    """Elements, cutoff, parameter count and dtype of a loaded MACE model."""
    from ase.data import chemical_symbols

    numbers = [int(z) for z in model.atomic_numbers]
    params = list(model.parameters())
    return {
        "elements": [chemical_symbols[z] for z in numbers],
        "atomic_numbers": numbers,
        "r_max_ang": float(model.r_max),
        "n_params": int(sum(p.numel() for p in params)),
        "model_dtype": str(params[0].dtype).replace("torch.", "") if params else None,
    }


def build_random_mace(
    elements: list[str],
    *,
    preset: str = "tiny",
    r_max_ang: float = 5.0,
    seed: int = 0,
    dtype: str = "float64",
    atomic_energies_ev: dict[str, float] | None = None,
    avg_num_neighbors: float = 20.0,
) -> Any:
    """A randomly initialised ScaleShiftMACE (for tests, benchmarks and as a training starting point).

    The model's dtype is set by converting after construction; the global torch default dtype is untouched.

    Parameters
    ----------
    elements
        Chemical symbols the model covers.
    preset
        ``tiny``, ``small`` or ``medium`` (see :data:`MACE_PRESETS`).
    r_max_ang
        Radial cutoff (Å).
    seed
        Seed of the weight initialisation (a local torch generator state; restored afterwards).
    dtype
        ``float32`` or ``float64``.
    atomic_energies_ev
        Isolated-atom reference energies (eV) per element; defaults to -2 eV each.
    avg_num_neighbors
        Normalisation of the message passing (typical: 20–60 for dense oxides at 5 Å).
    """
    from ase.data import atomic_numbers

    if preset not in MACE_PRESETS:
        raise PotentialError(f"unknown preset {preset!r}; choose one of {', '.join(MACE_PRESETS)}")
    ns = import_mace()
    torch, o3, modules = ns.torch, ns.o3, ns.modules
    import numpy as np

    zs = sorted(atomic_numbers[s] for s in set(elements))
    by_z = {atomic_numbers[s]: e for s, e in (atomic_energies_ev or {}).items()}
    energies = np.array([by_z.get(z, -2.0) for z in zs])
    arch = MACE_PRESETS[preset]
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
        model = modules.ScaleShiftMACE(
            r_max=float(r_max_ang),
            num_bessel=8,
            num_polynomial_cutoff=5,
            max_ell=3,
            interaction_cls=block,
            interaction_cls_first=block,
            num_interactions=arch["num_interactions"],
            num_elements=len(zs),
            hidden_irreps=o3.Irreps(arch["hidden_irreps"]),
            MLP_irreps=o3.Irreps(arch["mlp_irreps"]),
            atomic_energies=energies,
            avg_num_neighbors=float(avg_num_neighbors),
            atomic_numbers=zs,
            correlation=arch["correlation"],
            gate=torch.nn.functional.silu,
            radial_MLP=[32, 32, 32],
            atomic_inter_scale=1.0,
            atomic_inter_shift=0.0,
        )
    return model.to(torch.float64 if dtype == "float64" else torch.float32)
