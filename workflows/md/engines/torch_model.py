"""MACE called on device tensors for a batch of systems: neighbour lists on the device, one model call.

:class:`TorchMACE` wraps a MACE ``torch.nn.Module`` (taken from the ASE ``MACECalculator`` that
:func:`tfbsim.workflows.potentials.factory.load_potential` builds, or given directly). For a batch of systems held as
concatenated tensors it builds the graph the way mace-torch's own data pipeline does (``edge_index`` =
sender/receiver, ``shifts = unit_shifts @ cell``, one-hot ``node_attrs``, ``batch``/``ptr``, ``head``) and
returns energies per system, forces per atom and, on request, stresses per system — everything stays on the
model's device.

Neighbour lists come from vesin-torch (``vesin_torch.NeighborList``), one list object per system, computed
where the positions live (its CUDA kernels on a GPU, its C++ cell list on a CPU). With ``skin_ang > 0`` vesin
keeps a Verlet list and rebuilds it only when an atom moved more than ``skin/2``; pairs beyond the cutoff are
always filtered out, so the model sees exactly the same edges (possibly in another order) as without a skin.

cuEquivariance: with ``cueq=True`` (or ``"auto"`` on CUDA when ``cuequivariance_torch`` is importable) the
model is converted with mace-torch's converter (``mace.cli.convert_e3nn_cueq``; imported through
:func:`~tfbsim.workflows.potentials.mace_backend.import_mace_module`). The converter sets torch's global default dtype;
the previous default is restored immediately.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ....errors import ConfigError, PotentialError

__all__ = ["TorchMACE", "Graph", "cueq_available", "import_vesin_torch", "require_mace_calculator"]

logger = logging.getLogger(__name__)


def import_vesin_torch() -> Any:
    """``vesin_torch.NeighborList`` (the ``gpu`` extra), or a ConfigError that says how to install it."""
    try:
        from vesin_torch import NeighborList
    except ImportError as exc:
        raise ConfigError(
            f"the gpu MD engine needs vesin-torch ({exc}); install the extra: pip install 'tfbsim[gpu]' "
            "(or pip install vesin-torch), or use engine: ase"
        ) from exc
    return NeighborList


def require_mace_calculator(calc: Any) -> None:
    """ConfigError unless ``calc`` is a MACE calculator (holds ``models``), before anything runs."""
    if not getattr(calc, "models", None):
        kind = (getattr(calc, "parameters", None) or {}).get("kind") or type(calc).__name__
        raise ConfigError(f"the gpu MD engine runs MACE models only, not {kind}; use engine: ase for this potential")


def cueq_available() -> bool:
    """Whether ``cuequivariance_torch`` can be imported (does not import mace)."""
    import importlib.util

    return importlib.util.find_spec("cuequivariance_torch") is not None


@dataclass
class Graph:
    """The fixed part of a batch's graph (everything but positions, cells and edges).

    Attributes
    ----------
    node_attrs
        One-hot element encoding (N, n_elements), model dtype.
    batch
        System index of every atom (N,), int64.
    ptr
        Offsets of the systems (n_systems + 1,), int64 tensor; ``offsets`` is the same as a list of ints.
    head
        Model head index per system (n_systems,), int64.
    pbc
        Periodicity per system (n_systems, 3), bool (CPU tensor, for vesin).
    nls
        One vesin ``NeighborList`` per system.
    """

    node_attrs: Any
    batch: Any
    ptr: Any
    offsets: list[int]
    head: Any
    pbc: Any
    nls: list[Any]

    @property
    def n_systems(self) -> int:
        """Number of systems."""
        return len(self.offsets) - 1


class TorchMACE:
    """A MACE model evaluated on batched device tensors.

    Parameters
    ----------
    model
        MACE ``torch.nn.Module`` (already in the wanted dtype; moved to ``device``).
    device
        Torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``); ``None``: the model's device.
    head
        Head name of a multi-head model (``None``: ``default`` if present, else the only head).
    cueq
        Convert to cuEquivariance: ``True``, ``False`` or ``"auto"`` (on CUDA when installed).
    skin_ang
        Verlet skin of the neighbour lists (Å); 0 rebuilds every step.
    """

    def __init__(
        self,
        model: Any,
        *,
        device: str | None = None,
        head: str | None = None,
        cueq: bool | str = "auto",
        skin_ang: float = 0.0,
    ) -> None:
        from ...potentials.mace_backend import import_mace

        torch = import_mace().torch
        self._torch = torch
        self._nl_cls = import_vesin_torch()
        if not hasattr(model, "atomic_numbers") or not hasattr(model, "r_max"):
            raise PotentialError(f"the gpu engine needs a MACE model, not a {type(model).__name__}")
        params = next(model.parameters())
        self.device = torch.device(device) if device is not None else params.device
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {self.device} requested but torch sees no CUDA GPU; use device: cpu")
        self.dtype = params.dtype
        model = model.to(self.device).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        use_cueq = (self.device.type == "cuda" and cueq_available()) if cueq == "auto" else bool(cueq)
        if use_cueq:
            model = _convert_cueq(model, self.device)
        self.cueq = use_cueq
        self.model = model
        self.r_max = float(model.r_max)
        self.skin_ang = float(skin_ang)
        self.atomic_numbers = [int(z) for z in model.atomic_numbers]
        heads = list(getattr(model, "heads", None) or ["Default"])
        if head is None:
            defaults = [i for i, h in enumerate(heads) if str(h).lower() == "default"]
            head_index = defaults[0] if defaults else len(heads) - 1
        elif head in heads:
            head_index = heads.index(head)
        else:
            raise PotentialError(f"head {head!r} not in the model's heads {heads}")
        self.head_index = head_index
        self.head = heads[head_index]

    @classmethod
    def from_calculator(cls, calc: Any, *, device: str | None = None, cueq: bool | str = "auto",
                        skin_ang: float = 0.0) -> TorchMACE:
        """The MACE module inside an ASE ``MACECalculator`` (as built by ``load_potential``)."""
        if isinstance(calc, TorchMACE):
            return calc
        require_mace_calculator(calc)
        models = calc.models
        if len(models) > 1:
            logger.warning("MACE committee of %d models: the gpu engine uses the first one only", len(models))
        return cls(models[0], device=device, head=getattr(calc, "head", None), cueq=cueq, skin_ang=skin_ang)

    # ---------------------------------------------------------------------------------------------- graph
    def graph(self, numbers: list[np.ndarray], pbc: list[np.ndarray]) -> Graph:
        """The fixed graph data of systems with these atomic numbers and periodicities."""
        torch = self._torch
        index = np.full(120, -1, dtype=np.int64)
        index[self.atomic_numbers] = np.arange(len(self.atomic_numbers))
        all_numbers = np.concatenate([np.asarray(n, dtype=np.int64) for n in numbers])
        species = index[all_numbers]
        if np.any(species < 0):
            from ase.data import chemical_symbols

            missing = sorted({chemical_symbols[z] for z in all_numbers[species < 0]})
            raise PotentialError(f"the MACE model does not cover {', '.join(missing)}")
        counts = [len(n) for n in numbers]
        offsets = [0, *np.cumsum(counts).tolist()]
        dev = self.device
        node_attrs = torch.nn.functional.one_hot(torch.as_tensor(species, device=dev),
                                                 len(self.atomic_numbers)).to(self.dtype)
        batch = torch.repeat_interleave(torch.arange(len(counts), device=dev), torch.as_tensor(counts, device=dev))
        return Graph(
            node_attrs=node_attrs,
            batch=batch,
            ptr=torch.as_tensor(offsets, dtype=torch.int64, device=dev),
            offsets=[int(o) for o in offsets],
            head=torch.full((len(counts),), self.head_index, dtype=torch.int64, device=dev),
            pbc=torch.as_tensor(np.asarray(pbc, dtype=bool).reshape(-1, 3)),
            nls=[self.new_neighbour_list() for _ in counts],
        )

    def new_neighbour_list(self) -> Any:
        """A fresh vesin neighbour list (full list, this model's cutoff and skin)."""
        return self._nl_cls(cutoff=self.r_max, full_list=True, skin=self.skin_ang)

    def edges(self, graph: Graph, positions: Any, cells: Any) -> tuple[Any, Any]:
        """``edge_index`` (2, E) and ``unit_shifts`` (E, 3) of all systems, from float64 positions."""
        torch = self._torch
        senders, receivers, shifts = [], [], []
        for k, nl in enumerate(graph.nls):
            a, b = graph.offsets[k], graph.offsets[k + 1]
            pbc = graph.pbc[k]
            periodic = bool(pbc[0]) if bool(pbc.all()) or not bool(pbc.any()) else pbc  # a bool when uniform
            i, j, s = nl.compute(points=positions[a:b], box=cells[k], periodic=periodic, quantities="ijS")
            senders.append(i.to(torch.int64) + a)
            receivers.append(j.to(torch.int64) + a)
            shifts.append(s)
        edge_index = torch.stack((torch.cat(senders), torch.cat(receivers)))
        unit_shifts = torch.cat(shifts).to(self.dtype)
        return edge_index, unit_shifts

    # ------------------------------------------------------------------------------------------ evaluate
    def evaluate(self, graph: Graph, positions: Any, cells: Any, *, stress: bool = False
                 ) -> tuple[Any, Any, Any | None]:
        """Energies (n_systems,), forces (N, 3) and stresses (n_systems, 3, 3) or ``None``.

        Parameters
        ----------
        graph
            From :meth:`graph`.
        positions
            (N, 3) float64 positions on the device (Å); not modified.
        cells
            (n_systems, 3, 3) float64 cells as rows (Å).
        stress
            Also compute the stress (eV/Å³, ASE sign convention: positive = tensile).

        Returns
        -------
        tuple
            Float64 tensors on the device: energies (eV), forces (eV/Å), stresses (eV/Å³) or ``None``.
        """
        torch = self._torch
        edge_index, unit_shifts = self.edges(graph, positions, cells)
        pos = positions.detach().to(self.dtype).clone()
        cell = cells.detach().to(self.dtype)
        # the same expression as mace's get_symmetric_displacement, so stress and no-stress calls agree
        shifts = torch.einsum("be,bec->bc", unit_shifts, cell[graph.batch[edge_index[0]]])
        data = {
            "positions": pos,
            "node_attrs": graph.node_attrs,
            "edge_index": edge_index,
            "shifts": shifts,
            "unit_shifts": unit_shifts,
            "cell": cell.reshape(-1, 3),
            "batch": graph.batch,
            "ptr": graph.ptr,
            "head": graph.head,
        }
        with torch.enable_grad():
            out = self.model(data, training=False, compute_force=True, compute_stress=stress)
        energy = out["energy"].detach().to(torch.float64)
        forces = out["forces"].detach().to(torch.float64)
        sigma = out.get("stress") if stress else None
        return energy, forces, (sigma.detach().to(torch.float64) if sigma is not None else None)


def _convert_cueq(model: Any, device: Any) -> Any:
    """mace-torch's e3nn → cuEquivariance conversion, with torch's default dtype restored afterwards."""
    from ...potentials.mace_backend import import_mace_module

    torch = import_mace_module("torch")
    if not cueq_available():
        raise ConfigError("cueq: true needs cuequivariance-torch; pip install 'tfbsim[cueq]' (or set cueq: auto)")
    converter = import_mace_module("mace.cli.convert_e3nn_cueq")
    previous = torch.get_default_dtype()
    try:
        converted = converter.run(model, device=str(device), return_model=True)
    finally:
        torch.set_default_dtype(previous)
    logger.info("MACE model converted to cuEquivariance")
    return converted.to(device).eval()
