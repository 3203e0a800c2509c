"""ASE integrators, adapted for exact restarts, temperature ramps and correct degrees of freedom.

tfbsim uses ASE's integrators for the physics (``VelocityVerlet``, ``Langevin``, ``Bussi``,
``NoseHooverChainNVT``, ``IsotropicMTKNPT``, ``MTKNPT``, ``MaskedMTKNPT``, ``NPTBerendsen``) and adds, in thin
subclasses, only what ASE lacks:

1. **Degrees of freedom.** ASE's Nosé–Hoover chain and MTK classes couple the thermostat to ``3 N`` degrees
   of freedom. With zero total momentum (conserved by these integrators) only ``3 N - 3`` move, and atoms
   held by ``FixAtoms`` remove 3 each; with ``3 N`` the sampled temperature is too high by ``3N/(3N-3)``
   (3 % for 32 atoms) and far too high for a film with a fixed substrate. The subclasses rebuild ASE's own
   thermostat/barostat objects with ``N_f = ndof / 3`` "atoms" (ndof is always a multiple of 3 here), so
   every ``3 N`` in ASE's equations becomes ``ndof``. ``Bussi`` already counts constraints
   (``atoms.get_number_of_degrees_of_freedom()``); the engine adds :class:`~ase.constraints.FixCom` for the
   integrators that read the state from the atoms each step (velocity Verlet, Langevin, Bussi, Berendsen).
2. **Temperature ramps.** ``set_temperature`` for Bussi, Nosé–Hoover chains and MTK (ASE has it only for
   Langevin and Berendsen; janus-core issue #413). The thermostat masses follow ``Q ∝ kT`` so that
   ``tdamp`` keeps its meaning during a ramp.
3. **Exact restart.** ``get_state()`` / ``set_state()`` return and restore every internal variable (the
   particle copies ``_q``/``_p``, thermostat ``eta``/``p_eta``, barostat ``eps``/``p_eps``/``xi``/``p_xi``,
   cell momenta, reference cells) as float64 arrays, so that a restarted run is bit-identical.
4. **Masks that work.** ASE 3.29's ``MaskedMTKNPT`` silently ignores a mask given as a tuple (its documented
   form): ``_p_c[(False, False, True)]`` is a multi-dimensional index that selects nothing. The adapter
   passes a boolean array.
5. **Fixed atoms.** ``atoms.get_forces(md=True)`` leaves ``FixAtoms`` out, so ASE's Nosé–Hoover chain
   accumulates momentum on fixed atoms in its private ``_p`` and thermostats that bogus kinetic energy
   (free atoms of a slab ended at 112 K for a 300 K target); ASE's MTK classes refuse constraints. Here
   fixed atoms carry no momentum and no force; under MTK they follow the affine cell deformation (fixed
   fractional coordinates), as in :func:`tfbsim.workflows.md.relax.relax`.

These subclasses touch private attributes of ASE 3.29's integrators; :func:`_require` fails loudly if a
future ASE renames them, and ``tests/workflows/test_md_thermostats.py`` checks that with ``ndof = 3 N`` the
subclasses reproduce ASE's own trajectories bit for bit.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.constraints import FixAtoms
from ase.md.bussi import Bussi
from ase.md.langevin import Langevin
from ase.md.nose_hoover_chain import (
    MTKNPT,
    IsotropicMTKBarostat,
    IsotropicMTKNPT,
    MaskedMTKNPT,
    MTKBarostat,
    NoseHooverChainNVT,
    NoseHooverChainThermostat,
)
from ase.md.nptberendsen import Inhomogeneous_NPTBerendsen, NPTBerendsen
from ase.md.verlet import VelocityVerlet

__all__ = [
    "TfbVelocityVerlet",
    "TfbLangevin",
    "TfbBussi",
    "TfbNoseHooverChain",
    "TfbIsotropicMTK",
    "TfbMTK",
    "TfbMaskedMTK",
    "TfbBerendsenNPT",
    "TfbInhomogeneousBerendsenNPT",
]


def _require(obj: object, names: tuple[str, ...]) -> None:
    missing = [n for n in names if not hasattr(obj, n)]
    if missing:
        import ase

        raise RuntimeError(
            f"ase {ase.__version__}: {type(obj).__mro__[1].__name__} lacks {missing}; tfbsim's MD adapters "
            "were written for ase 3.29 — install ase==3.29.* or report this"
        )


class _StateMixin:
    """``get_state``/``set_state`` over the dotted attribute paths in ``_state_paths``."""

    _state_paths: tuple[str, ...] = ()

    def _resolve(self, path: str) -> tuple[object, str]:
        obj: object = self
        *parents, name = path.split(".")
        for parent in parents:
            obj = getattr(obj, parent)
        return obj, name

    def get_state(self) -> dict[str, np.ndarray]:
        """Internal integrator variables as float64 arrays (copies), keyed by attribute path."""
        state = {}
        for path in self._state_paths:
            obj, name = self._resolve(path)
            state[path] = np.array(getattr(obj, name), dtype=np.float64, copy=True)
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore variables saved by :meth:`get_state` (scalars stay Python floats)."""
        for path in self._state_paths:
            obj, name = self._resolve(path)
            value = np.asarray(state[path], dtype=np.float64)
            setattr(obj, name, float(value) if value.ndim == 0 else value.copy())

    def set_temperature_k(self, temperature_k: float) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


# ---------------------------------------------------------------------------------------- NVE / NVT
class TfbVelocityVerlet(_StateMixin, VelocityVerlet):
    """Velocity Verlet (NVE); ``set_temperature_k`` is a no-op."""

    def set_temperature_k(self, temperature_k: float) -> None:
        """NVE has no thermostat: nothing to set."""


class TfbLangevin(_StateMixin, Langevin):
    """ASE Langevin with ``fixcm=False`` (the centre of mass is held by a ``FixCom`` constraint instead)."""

    def __init__(self, atoms: Atoms, timestep: float, *, temperature_k: float, friction: float, rng) -> None:
        super().__init__(atoms, timestep, temperature_K=temperature_k, friction=friction, fixcm=False, rng=rng)

    def set_temperature_k(self, temperature_k: float) -> None:
        """Change the target temperature (K)."""
        self.set_temperature(temperature_K=temperature_k)


class TfbBussi(_StateMixin, Bussi):
    """Bussi–Donadio–Parrinello stochastic velocity rescaling, with ``set_temperature_k`` for ramps."""

    _state_paths = ("transferred_energy",)

    def __init__(self, atoms: Atoms, timestep: float, *, temperature_k: float, taut: float, rng) -> None:
        super().__init__(atoms, timestep, temperature_K=temperature_k, taut=taut, rng=rng)
        _require(self, ("temp", "target_kinetic_energy", "ndof", "transferred_energy"))

    def set_temperature_k(self, temperature_k: float) -> None:
        """Change the target temperature (K) (the target kinetic energy is ndof kT / 2)."""
        self.temp = temperature_k * units.kB
        self.target_kinetic_energy = 0.5 * self.temp * self.ndof


def _nhc(masses: np.ndarray, ndof: int, temperature_k: float, tdamp: float, tchain: int) -> NoseHooverChainThermostat:
    """ASE's Nosé–Hoover chain coupled to ``ndof`` degrees of freedom (ndof/3 "atoms")."""
    return NoseHooverChainThermostat(
        num_atoms_global=ndof // 3, masses=masses, temperature_K=temperature_k, tdamp=tdamp, tchain=tchain
    )


def _retune_nhc(thermostat: NoseHooverChainThermostat, temperature_k: float) -> None:
    """New target temperature for an ASE Nosé–Hoover chain (same expressions as its constructor)."""
    thermostat._kT = units.kB * temperature_k
    thermostat._Q[0] = 3 * thermostat._num_atoms_global * thermostat._kT * thermostat._tdamp**2
    thermostat._Q[1:] = thermostat._kT * thermostat._tdamp**2


class _ZeroFixedForcesMixin:
    """For integrators that keep their own particle arrays (``_q``, ``_p``): zero the forces on fixed atoms.

    ``atoms.get_forces(md=True)`` does not apply ``FixAtoms`` (ASE expects the constraint to act on the
    momenta when they are set), so ASE's Nosé–Hoover/MTK classes accumulate momentum on fixed atoms in their
    private ``_p``: the atoms object stays put, but the thermostat then counts that bogus kinetic energy (a
    32-atom slab with 8 fixed atoms thermalised to 112 K instead of 300 K).
    """

    _fixed_mask: np.ndarray | None = None

    def _init_fixed(self, atoms: Atoms) -> None:
        mask = np.zeros(len(atoms), dtype=bool)
        for constraint in atoms.constraints:
            if isinstance(constraint, FixAtoms):
                mask[constraint.index] = True
        self._fixed_mask = mask if mask.any() else None
        if self._fixed_mask is not None:
            self._p[self._fixed_mask] = 0.0

    def _get_forces(self) -> np.ndarray:
        forces = super()._get_forces()  # type: ignore[misc]
        if self._fixed_mask is not None:
            forces[self._fixed_mask] = 0.0
        return forces


_NHC_STATE = ("_thermostat._eta", "_thermostat._p_eta", "_thermostat._kT", "_thermostat._Q")
_BARO_STATE = ("_barostat._xi", "_barostat._p_xi", "_barostat._kT", "_barostat._W", "_barostat._R")


class TfbNoseHooverChain(_ZeroFixedForcesMixin, _StateMixin, NoseHooverChainNVT):
    """Nosé–Hoover chain NVT coupled to the true number of degrees of freedom ``ndof``."""

    _state_paths = ("_q", "_p", *_NHC_STATE)

    def __init__(
        self, atoms: Atoms, timestep: float, *, temperature_k: float, tdamp: float, ndof: int, tchain: int = 3
    ) -> None:
        super().__init__(atoms, timestep, temperature_K=temperature_k, tdamp=tdamp, tchain=tchain)
        _require(self, ("_thermostat", "_q", "_p"))
        self._thermostat = _nhc(self.masses, ndof, temperature_k, tdamp, tchain)
        _require(self._thermostat, ("_kT", "_Q", "_eta", "_p_eta", "_tdamp", "_num_atoms_global"))
        self._init_fixed(atoms)

    def set_temperature_k(self, temperature_k: float) -> None:
        """Change the target temperature (K); thermostat masses scale with kT."""
        _retune_nhc(self._thermostat, temperature_k)


class _MTKMixin(_ZeroFixedForcesMixin):
    """Shared MTK adaptations: ndof-coupled thermostat/barostat, fixed atoms, ramps."""

    def _build(self, atoms: Atoms, ndof: int, temperature_k: float, tdamp: float, pdamp: float, tchain: int):
        _require(self, ("_thermostat", "_barostat", "_q", "_p", "_num_atoms_global"))
        self._num_atoms_global = ndof // 3
        self._thermostat = _nhc(self.masses, ndof, temperature_k, tdamp, tchain)
        self._init_fixed(atoms)

    def _update_atoms(self) -> None:
        # Fixed atoms carry no momentum or force, so _q moves them only affinely with the cell; set the
        # positions without FixAtoms (which would pin Cartesian positions while the cell changes).
        self.atoms.set_positions(self._q, apply_constraint=False)
        self.atoms.set_momenta(self._p, apply_constraint=False)
        self._set_cell()

    def set_temperature_k(self, temperature_k: float) -> None:
        """Change the target temperature (K): thermostat and barostat masses scale with kT."""
        _retune_nhc(self._thermostat, temperature_k)
        baro = self._barostat
        baro._kT = units.kB * temperature_k
        self._retune_barostat(baro)
        self._temperature_K = temperature_k
        self._kT = units.kB * temperature_k


def _init_without_constraints(cls, self, atoms: Atoms, *args, **kwargs) -> None:
    """Call an ASE MTK constructor that refuses constraints, then restore them."""
    constraints = atoms.constraints
    atoms.set_constraint()
    try:
        cls.__init__(self, atoms, *args, **kwargs)
    finally:
        atoms.set_constraint(constraints)


class TfbIsotropicMTK(_MTKMixin, _StateMixin, IsotropicMTKNPT):
    """MTK NPT with isotropic volume fluctuations (cell shape fixed)."""

    _state_paths = ("_q", "_p", "_eps", "_p_eps", "_volume0", "_cell0", *_NHC_STATE, *_BARO_STATE)

    def __init__(
        self, atoms: Atoms, timestep: float, *, temperature_k: float, pressure_au: float, tdamp: float,
        pdamp: float, ndof: int, tchain: int = 3,
    ) -> None:
        _init_without_constraints(
            IsotropicMTKNPT, self, atoms, timestep, temperature_K=temperature_k, pressure_au=pressure_au,
            tdamp=tdamp, pdamp=pdamp, tchain=tchain, pchain=tchain,
        )
        self._build(atoms, ndof, temperature_k, tdamp, pdamp, tchain)
        self._barostat = IsotropicMTKBarostat(
            num_atoms_global=ndof // 3, temperature_K=temperature_k, pdamp=pdamp, pchain=tchain
        )
        _require(self._barostat, ("_xi", "_p_xi", "_kT", "_W", "_R", "_pdamp"))

    def _set_cell(self) -> None:
        self.atoms.set_cell(self._cell0 * np.exp(self._eps), scale_atoms=False)

    @staticmethod
    def _retune_barostat(baro: IsotropicMTKBarostat) -> None:
        baro._W = (3 * baro._num_atoms_global + 3) * baro._kT * baro._pdamp**2
        baro._R[0] = 9 * baro._kT * baro._pdamp**2
        baro._R[1:] = baro._kT * baro._pdamp**2


class TfbMTK(_MTKMixin, _StateMixin, MTKNPT):
    """MTK NPT with full cell fluctuations (all nine components; crystals)."""

    _state_paths = ("_q", "_p", "_h", "_p_g", *_NHC_STATE, *_BARO_STATE)
    _mask: tuple[bool, bool, bool] | None = None

    def __init__(
        self, atoms: Atoms, timestep: float, *, temperature_k: float, pressure_au: float, tdamp: float,
        pdamp: float, ndof: int, tchain: int = 3,
    ) -> None:
        _init_without_constraints(
            self._ase_class(), self, atoms, timestep, temperature_K=temperature_k, pressure_au=pressure_au,
            tdamp=tdamp, pdamp=pdamp, tchain=tchain, pchain=tchain, **self._mask_kwargs(),
        )
        self._build(atoms, ndof, temperature_k, tdamp, pdamp, tchain)
        self._barostat = MTKBarostat(
            num_atoms_global=ndof // 3, temperature_K=temperature_k, pdamp=pdamp, pchain=tchain, mask=self.mask
        )
        _require(self._barostat, ("_xi", "_p_xi", "_kT", "_W", "_R", "_pdamp", "_cell_dof"))

    def _ase_class(self):
        return MTKNPT

    def _mask_kwargs(self) -> dict:
        return {}

    def _set_cell(self) -> None:
        self.atoms.set_cell(self._h, scale_atoms=False)

    @staticmethod
    def _retune_barostat(baro: MTKBarostat) -> None:
        baro._W = (baro._num_atoms_global + 1) * baro._kT * baro._pdamp**2
        baro._R[0] = baro._cell_dof * baro._kT * baro._pdamp**2
        baro._R[1:] = baro._kT * baro._pdamp**2


class TfbMaskedMTK(TfbMTK, MaskedMTKNPT):
    """MTK NPT in which only the lengths of the selected cell vectors fluctuate (``mask`` over a, b, c)."""

    _state_paths = ("_q", "_p", "_h", "_p_c", "_h0_basis", *_NHC_STATE, *_BARO_STATE)

    def __init__(self, *args, mask: tuple[bool, bool, bool], **kwargs) -> None:
        # an ndarray, not a tuple: ASE 3.29 indexes ``_p_c[self.mask]``, and a tuple of bools there is a
        # multi-dimensional index that silently updates nothing (the cell would never move)
        self._init_mask = np.array([bool(m) for m in mask], dtype=bool)
        super().__init__(*args, **kwargs)

    def _ase_class(self):
        return MaskedMTKNPT

    def _mask_kwargs(self) -> dict:
        return {"mask": self._init_mask}


class TfbBerendsenNPT(_StateMixin, NPTBerendsen):
    """Berendsen NPT (isotropic; equilibration only), centre of mass held by ``FixCom`` instead of fixcm."""

    def __init__(
        self, atoms: Atoms, timestep: float, *, temperature_k: float, pressure_au: float, taut: float,
        taup: float, compressibility_au: float, **kwargs,
    ) -> None:
        super().__init__(
            atoms, timestep, temperature_K=temperature_k, pressure_au=pressure_au, taut=taut, taup=taup,
            compressibility_au=compressibility_au, fixcm=False, **kwargs,
        )

    def set_temperature_k(self, temperature_k: float) -> None:
        """Change the target temperature (K)."""
        self.set_temperature(temperature_K=temperature_k)


class TfbInhomogeneousBerendsenNPT(TfbBerendsenNPT, Inhomogeneous_NPTBerendsen):
    """Berendsen NPT scaling a, b, c independently (``mask``; equilibration only)."""

    def __init__(self, *args, mask: tuple[int, int, int], **kwargs) -> None:
        TfbBerendsenNPT.__init__(self, *args, **kwargs)
        self.mask = mask
