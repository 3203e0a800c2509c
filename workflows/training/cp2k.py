"""PBE labels from CP2K: named, recorded settings and one subprocess per frame.

:class:`Cp2kSettings` names every choice that changes the numbers (functional, basis, pseudopotentials,
cutoffs, smearing, k-points, SCF thresholds) and :func:`cp2k_single_point` runs ``cp2k.psmp`` once per frame
in its own scratch folder with a wall-clock limit, then parses energy, forces and the analytical stress from
the output. A frame whose SCF did not converge, that ran out of time or whose output cannot be parsed raises
:class:`LabellingFailed` — the labelling loop records it and never keeps its numbers.

Why a subprocess and not ASE's ``cp2k_shell`` calculator: a per-frame timeout must be able to kill the solver,
and a crashed solver must cost one frame, not the run.

Units: the output is converted once, here, to eV, eV/Å and eV/Å³ (ASE's stress sign: CP2K prints the
stress with the opposite sign).

Default settings, and why (see ``docs``/the dataset card for the convergence check on one frame):
diagonalisation + Broyden mixing + Fermi–Dirac smearing at 300 K (the OT minimiser from an atomic guess
stalled on unrelaxed amorphous boxes), DZVP-MOLOPT-SR-GTH basis with GTH-PBE pseudopotentials, 600 Ry plane-
wave cutoff (relative 60 Ry: at 400/50 Ry the O forces of a LiPON frame differed by 107 meV/Å RMS from 600/60,
see datasets/pbe-v1/convergence_400_vs_600Ry.json), Γ point only (cells ≥ ~8 Å; state otherwise with ``kpoints``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.units import Bohr, GPa, Hartree

from ...errors import ConfigError, TfbsimError
from ..config import StrictModel

__all__ = ["Cp2kSettings", "Cp2kCalculator", "LabellingFailed", "cp2k_single_point", "cp2k_input",
           "cp2k_version", "resolve_basis"]

logger = logging.getLogger(__name__)

# Valence electrons of the GTH-PBE pseudopotentials used for each element (CP2K's GTH_POTENTIALS).
_VALENCE = {"H": 1, "Li": 3, "C": 4, "N": 5, "O": 6, "F": 7, "Na": 9, "Mg": 10, "Al": 3, "Si": 4, "P": 5,
            "S": 6, "Cl": 7, "K": 9, "Ca": 10, "Ti": 12, "Mn": 15, "Fe": 16, "Co": 17, "Ni": 18}
# Spin multiplicity of free atoms (ground state, Hund's rule): used only for isolated-atom references.
_ATOM_MULTIPLICITY = {"H": 2, "Li": 2, "C": 3, "N": 4, "O": 3, "F": 2, "Na": 2, "Mg": 1, "Al": 2, "Si": 3,
                      "P": 4, "S": 3, "Cl": 2, "Co": 4}


def _parent_death_signal() -> Any:
    """A ``preexec_fn`` that makes the solver receive SIGKILL when the thread that started it dies (Linux).

    A labeller killed with SIGTERM or SIGKILL has no chance to clean up; without this its CP2K process would
    run on for up to an hour as an orphan, holding a core and writing nowhere. Elsewhere: ``None`` (no-op).
    """
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the forked child
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)

    return preexec


class LabellingFailed(TfbsimError, RuntimeError):
    """One frame could not be labelled (SCF not converged, timeout, solver error): record it and skip it."""


class Cp2kSettings(StrictModel):
    """Every CP2K setting that changes the labels (YAML keys are the field names).

    Attributes
    ----------
    executable
        CP2K binary (``cp2k.psmp`` from Debian's ``cp2k`` package).
    data_dir
        Folder holding the basis-set and pseudopotential files.
    functional
        Exchange–correlation functional (``PBE``).
    basis, basis_file
        Basis-set family (resolved per element, with its ``-q<valence>`` suffix where the file uses one) and
        the file it is read from.
    potential, potential_file
        Pseudopotential family (``GTH-PBE`` → ``GTH-PBE-q<valence>``) and its file.
    cutoff_ry, rel_cutoff_ry
        Plane-wave cutoff of the finest grid and the relative cutoff (Ry).
    electronic_temperature_k
        Fermi–Dirac smearing temperature (K); the energy is the Mermin free energy, consistent with the forces.
    kpoints
        ``None`` for the Γ point, else a Monkhorst–Pack mesh ``[n1, n2, n3]``.
    eps_scf, max_scf
        SCF convergence threshold (Hartree) and iteration limit; an unconverged frame is a failure.
    mixing_alpha
        Broyden mixing parameter.
    added_mos_fraction
        Extra unoccupied orbitals for the smearing, as a fraction of the occupied ones (at least 10).
    threads, mpi_ranks
        OpenMP threads per rank and MPI ranks (``mpirun -np``) of one CP2K process.
    timeout_s
        Wall-clock limit of one frame (s); the process is killed and the frame recorded as failed.
    stress
        Compute the analytical stress tensor (3-D periodic frames only).
    reuse_wavefunction
        Start the SCF of a frame from the converged wavefunction of the previous frame of the same calculator
        when both have the same atoms in the same order (neighbouring NEB images, MD snapshots of one box);
        otherwise, or if that run fails, from the atomic guess. The labels agree within the SCF threshold.
    """

    executable: str = "cp2k.psmp"
    data_dir: str = "/usr/share/cp2k"
    functional: str = "PBE"
    basis: str = "DZVP-MOLOPT-SR-GTH"
    basis_file: str = "BASIS_MOLOPT"
    potential: str = "GTH-PBE"
    potential_file: str = "GTH_POTENTIALS"
    cutoff_ry: float = 600.0
    rel_cutoff_ry: float = 60.0
    electronic_temperature_k: float = 300.0
    kpoints: list[int] | None = None
    eps_scf: float = 1.0e-6
    max_scf: int = 200
    mixing_alpha: float = 0.3
    added_mos_fraction: float = 0.3
    threads: int = 1
    mpi_ranks: int = 1
    timeout_s: float = 3600.0
    stress: bool = True
    reuse_wavefunction: bool = True

    #: Settings that decide how a frame is computed, not what its labels are.
    EXECUTION_KEYS: ClassVar[tuple[str, ...]] = ("executable", "data_dir", "threads", "mpi_ranks", "timeout_s", "reuse_wavefunction")

    def level_of_theory(self) -> dict[str, Any]:
        """The settings that change the labels (everything but :attr:`EXECUTION_KEYS`)."""
        return {k: v for k, v in self.model_dump().items() if k not in self.EXECUTION_KEYS}

    def spec(self) -> str:
        """Short name of the level of theory, e.g. ``cp2k:PBE/DZVP-MOLOPT-SR-GTH/GTH-PBE/400Ry``."""
        k = "G" if not self.kpoints else "x".join(map(str, self.kpoints))
        return f"cp2k:{self.functional}/{self.basis}/{self.potential}/{self.cutoff_ry:g}Ry/k{k}"


def _check_settings(settings: Cp2kSettings) -> None:
    if settings.cutoff_ry <= 0 or settings.rel_cutoff_ry <= 0:
        raise ConfigError("cp2k: cutoff_ry and rel_cutoff_ry must be > 0 (typical: 400 and 50)")
    if settings.threads < 1 or settings.mpi_ranks < 1:
        raise ConfigError("cp2k: threads and mpi_ranks must be ≥ 1")
    if settings.timeout_s <= 0:
        raise ConfigError("cp2k: timeout_s must be > 0 seconds")
    if settings.kpoints is not None and (len(settings.kpoints) != 3 or min(settings.kpoints) < 1):
        raise ConfigError(f"cp2k: kpoints must be three positive integers or null (Γ point), got {settings.kpoints}")


def _data_file(settings: Cp2kSettings, name: str) -> Path:
    path = Path(name) if os.path.isabs(name) else Path(settings.data_dir) / name
    if not path.is_file():
        raise ConfigError(f"cp2k: {path} not found; install CP2K's data (`apt-get install cp2k`) or set data_dir")
    return path


def _names_in(path: Path) -> set[tuple[str, str]]:
    """(element, name) pairs of every entry of a CP2K basis/potential file (aliases included)."""
    pairs: set[tuple[str, str]] = set()
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0][:1].isalpha() and parts[0][:1].isupper() and len(parts[0]) <= 2 \
                and not parts[1][:1].isdigit():
            for name in parts[1:]:
                if name[:1].isdigit():
                    break
                pairs.add((parts[0], name))
    return pairs


def resolve_basis(settings: Cp2kSettings, elements: list[str]) -> dict[str, tuple[str, str]]:
    """Per element, the (basis, pseudopotential) names found in the data files.

    Raises
    ------
    ConfigError
        An element without a valence entry, or whose basis/pseudopotential is not in the files (names the
        element and the files).
    """
    basis_names = _names_in(_data_file(settings, settings.basis_file))
    pot_names = _names_in(_data_file(settings, settings.potential_file))
    out: dict[str, tuple[str, str]] = {}
    for el in sorted(set(elements)):
        if el not in _VALENCE:
            raise ConfigError(f"cp2k: no valence known for {el}; supported: {', '.join(sorted(_VALENCE))}")
        q = _VALENCE[el]
        basis = next((b for b in (settings.basis, f"{settings.basis}-q{q}") if (el, b) in basis_names), None)
        pot = next((p for p in (f"{settings.potential}-q{q}", settings.potential) if (el, p) in pot_names), None)
        if basis is None or pot is None:
            missing = settings.basis if basis is None else f"{settings.potential}-q{q}"
            raise ConfigError(f"cp2k: {missing} for {el} is not in {settings.basis_file}/{settings.potential_file} "
                              f"under {settings.data_dir}; choose another basis/potential family")
        out[el] = (basis, pot)
    return out


def cp2k_input(atoms: Atoms, settings: Cp2kSettings, *, project: str = "frame", multiplicity: int | None = None,
               guess_wfn: str | None = None) -> str:
    """The CP2K input deck of a single point (energy, forces and, if periodic, stress) on ``atoms``.

    Parameters
    ----------
    atoms
        The frame; its cell must be set (non-periodic directions are still a box in CP2K).
    settings
        Level of theory and SCF settings.
    multiplicity
        Spin multiplicity; ``None`` for a closed-shell (restricted) calculation. Isolated atoms use
        unrestricted (LSD) with their ground-state multiplicity.
    guess_wfn
        Wavefunction file (in the run folder) the SCF starts from (``SCF_GUESS RESTART``); ``None``: atomic guess.
    """
    if atoms.cell.rank != 3:
        raise ConfigError("cp2k: the frame has no 3-D cell; give it a box (vacuum for molecules/slabs)")
    kinds = resolve_basis(settings, atoms.get_chemical_symbols())
    n_valence = sum(_VALENCE[s] for s in atoms.get_chemical_symbols())
    added = max(10, int(np.ceil(settings.added_mos_fraction * n_valence / 2)))
    periodic = "XYZ" if atoms.pbc.all() else "".join(ax for ax, p in zip("XYZ", atoms.pbc) if p) or "NONE"
    stress = settings.stress and atoms.pbc.all()
    cell = "\n".join(f"      {ax} {v[0]:.10f} {v[1]:.10f} {v[2]:.10f}" for ax, v in zip("ABC", atoms.cell.array))
    coords = "\n".join(f"      {s} {p[0]:.10f} {p[1]:.10f} {p[2]:.10f}"
                       for s, p in zip(atoms.get_chemical_symbols(), atoms.positions))
    kind_blocks = "\n".join(f"    &KIND {el}\n      BASIS_SET {b}\n      POTENTIAL {p}\n    &END KIND"
                            for el, (b, p) in kinds.items())
    spin = f"    UKS\n    MULTIPLICITY {multiplicity}\n" if multiplicity is not None else ""
    kpts = ("    &KPOINTS\n      SCHEME MONKHORST-PACK " + " ".join(map(str, settings.kpoints))
            + "\n    &END KPOINTS\n") if settings.kpoints else ""
    return f"""&GLOBAL
  PROJECT {project}
  RUN_TYPE ENERGY_FORCE
  PRINT_LEVEL LOW
&END GLOBAL
&FORCE_EVAL
  METHOD QS
{"  STRESS_TENSOR ANALYTICAL" if stress else ""}
  &DFT
{f"    WFN_RESTART_FILE_NAME {guess_wfn}" + chr(10) if guess_wfn else ""}    BASIS_SET_FILE_NAME {_data_file(settings, settings.basis_file)}
    POTENTIAL_FILE_NAME {_data_file(settings, settings.potential_file)}
{spin}{kpts}    &MGRID
      CUTOFF {settings.cutoff_ry:g}
      REL_CUTOFF {settings.rel_cutoff_ry:g}
    &END MGRID
    &QS
      EPS_DEFAULT 1.0E-12
    &END QS
    &SCF
      EPS_SCF {settings.eps_scf:g}
      MAX_SCF {settings.max_scf}
      ADDED_MOS {added}
      SCF_GUESS {"RESTART" if guess_wfn else "ATOMIC"}
      &SMEAR ON
        METHOD FERMI_DIRAC
        ELECTRONIC_TEMPERATURE [K] {settings.electronic_temperature_k:g}
      &END SMEAR
      &DIAGONALIZATION
        ALGORITHM STANDARD
      &END DIAGONALIZATION
      &MIXING
        METHOD BROYDEN_MIXING
        ALPHA {settings.mixing_alpha:g}
        NBROYDEN 8
      &END MIXING
    &END SCF
    &XC
      &XC_FUNCTIONAL {settings.functional}
      &END XC_FUNCTIONAL
    &END XC
  &END DFT
  &SUBSYS
    &CELL
{cell}
      PERIODIC {periodic}
    &END CELL
    &COORD
{coords}
    &END COORD
{kind_blocks}
  &END SUBSYS
  &PRINT
    &FORCES ON
    &END FORCES
{"    &STRESS_TENSOR ON" + chr(10) + "    &END STRESS_TENSOR" if stress else ""}
  &END PRINT
&END FORCE_EVAL
"""


_ENERGY = re.compile(r"ENERGY\| Total FORCE_EVAL \( QS \) energy \[(?:a\.u\.|hartree)\]:\s+(\S+)")
_STRESS = re.compile(r"^ ?STRESS\|[ \t]+([xyz])[ \t]+(\S+)[ \t]+(\S+)[ \t]+(\S+)[ \t]*$", re.MULTILINE)


def parse_output(text: str, n_atoms: int, *, want_stress: bool) -> dict[str, Any]:
    """Energy (eV), forces (eV/Å), stress (Voigt, eV/Å³, ASE sign) and SCF steps from a CP2K output.

    Raises
    ------
    LabellingFailed
        The SCF did not converge, or a quantity is missing (names which).
    """
    if "SCF run NOT converged" in text:
        raise LabellingFailed("SCF not converged")
    steps = [int(m) for m in re.findall(r"SCF run converged in\s+(\d+) steps", text)]
    if not steps:
        raise LabellingFailed("no converged SCF in the output (solver stopped early)")
    energies = _ENERGY.findall(text)
    if not energies:
        raise LabellingFailed("no total energy in the output")
    energy = float(energies[-1]) * Hartree
    block = text.rsplit("ATOMIC FORCES in [a.u.]", 1)
    if len(block) != 2:
        raise LabellingFailed("no forces in the output")
    forces = []
    for line in block[1].splitlines()[1:]:
        parts = line.split()
        if line.lstrip().startswith("SUM OF ATOMIC FORCES"):
            break
        if len(parts) == 6 and parts[0].isdigit():
            forces.append([float(x) for x in parts[3:6]])
    forces_arr = np.asarray(forces).reshape(-1, 3) * Hartree / Bohr
    if forces_arr.shape != (n_atoms, 3):
        raise LabellingFailed(f"forces block has {len(forces)} rows for {n_atoms} atoms")
    out: dict[str, Any] = {"energy": energy, "free_energy": energy, "forces": forces_arr, "scf_steps": steps[-1]}
    if want_stress:
        tail = text.rsplit("STRESS| Analytical stress tensor [GPa]", 1)
        if len(tail) != 2:
            raise LabellingFailed("no analytical stress in the output")
        rows = {m[0]: [float(v) for v in m[1:]] for m in _STRESS.findall(tail[1].split("1/3 Trace")[0])}
        if set(rows) != {"x", "y", "z"}:
            raise LabellingFailed("incomplete stress tensor in the output")
        s = -np.array([rows["x"], rows["y"], rows["z"]]) * GPa  # CP2K's sign is the opposite of ASE's
        out["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    return out


def cp2k_version(settings: Cp2kSettings | None = None) -> str:
    """``CP2K version 2023.1`` or similar (raises ConfigError when the executable is missing)."""
    settings = settings or Cp2kSettings()
    exe = shutil.which(settings.executable)
    if exe is None:
        raise ConfigError(f"cp2k: executable {settings.executable!r} not found; `apt-get install cp2k` "
                          "(Debian) or set executable")
    try:
        text = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cp2k: {exe} --version failed ({exc})") from exc
    match = re.search(r"CP2K version\s+(\S+)", text)
    return f"CP2K {match.group(1)}" if match else "CP2K (version unknown)"


def cp2k_single_point(atoms: Atoms, settings: Cp2kSettings, *, scratch: str | os.PathLike | None = None,
                      multiplicity: int | None = None, keep: bool = False, guess_wfn: str | os.PathLike | None = None,
                      save_wfn: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run one CP2K single point on ``atoms``; return energy/forces/(stress), ``scf_steps`` and ``wall_s``.

    Parameters
    ----------
    scratch
        Parent folder of the per-frame work folder (default: the system's temporary folder).
    keep
        Keep the work folder (input, output, wavefunction) for inspection.
    guess_wfn
        Converged wavefunction of a frame with the same atoms: the SCF starts from it.
    save_wfn
        Where to copy this frame's converged wavefunction (for the next frame's guess).

    Raises
    ------
    LabellingFailed
        Timeout, non-zero exit, unconverged SCF or an unparsable output (the message says which and where
        the output is when ``keep``).
    """
    _check_settings(settings)
    exe = shutil.which(settings.executable)
    if exe is None:
        raise ConfigError(f"cp2k: executable {settings.executable!r} not found; `apt-get install cp2k`")
    work = Path(tempfile.mkdtemp(prefix="tfbsim-cp2k-", dir=scratch))
    if guess_wfn is not None:
        shutil.copyfile(guess_wfn, work / "guess.wfn")
    deck = cp2k_input(atoms, settings, multiplicity=multiplicity, guess_wfn="guess.wfn" if guess_wfn else None)
    (work / "frame.inp").write_text(deck)
    cmd = [exe, "-i", "frame.inp", "-o", "frame.out"]
    if settings.mpi_ranks > 1:
        cmd = ["mpirun", "-np", str(settings.mpi_ranks), *cmd]
    env = dict(os.environ, OMP_NUM_THREADS=str(settings.threads))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=settings.timeout_s,
                              preexec_fn=_parent_death_signal())  # noqa: PLW1509 - only prctl runs in the child
        text = (work / "frame.out").read_text(errors="replace") if (work / "frame.out").exists() else ""
        if proc.returncode != 0 and "SCF run NOT converged" not in text:
            tail = (proc.stderr or text)[-400:].strip().replace("\n", " | ")
            raise LabellingFailed(f"cp2k exited {proc.returncode}: {tail}")
        result = parse_output(text, len(atoms), want_stress=settings.stress and bool(atoms.pbc.all()))
        if save_wfn is not None and (work / "frame-RESTART.wfn").exists():
            shutil.copyfile(work / "frame-RESTART.wfn", save_wfn)
    except subprocess.TimeoutExpired as exc:
        raise LabellingFailed(f"timeout after {settings.timeout_s:.0f} s") from exc
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    result["wall_s"] = time.perf_counter() - t0
    return result


class Cp2kCalculator(Calculator):
    """ASE calculator running :func:`cp2k_single_point` (one CP2K process per call).

    ``parameters`` carries ``spec`` (the level of theory), ``settings`` and ``version`` for the dataset card
    and provenance.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, settings: Cp2kSettings | dict | None = None, *, scratch: str | None = None, **kwargs: Any):
        settings = settings if isinstance(settings, Cp2kSettings) else Cp2kSettings.model_validate(settings or {})
        _check_settings(settings)
        super().__init__(**kwargs)
        self.settings = settings
        self.scratch = scratch
        self.parameters.update(spec=settings.spec(), settings=settings.model_dump(), version=cp2k_version(settings),
                               elements=sorted(_VALENCE))
        self.last_scf_steps: int | None = None
        self.last_guess: str | None = None  # "previous frame" or "atomic": how the last SCF started
        self._wfn_dir: tempfile.TemporaryDirectory | None = None
        self._wfn_numbers: np.ndarray | None = None  # the atoms of the saved wavefunction

    def _wavefunctions(self) -> tuple[Path | None, Path | None]:
        """(guess for this frame or None, where to save this frame's wavefunction or None)."""
        if not self.settings.reuse_wavefunction:
            return None, None
        if self._wfn_dir is None:
            self._wfn_dir = tempfile.TemporaryDirectory(prefix="tfbsim-cp2k-wfn-", dir=self.scratch)
        folder = Path(self._wfn_dir.name)
        previous, guess = folder / "previous.wfn", folder / "guess.wfn"
        same_atoms = self._wfn_numbers is not None and np.array_equal(self._wfn_numbers, self.atoms.numbers)
        self._wfn_numbers = None  # set again once this frame's wavefunction is saved
        if same_atoms and previous.exists():
            os.replace(previous, guess)
            return guess, previous
        previous.unlink(missing_ok=True)
        return None, previous

    def calculate(self, atoms: Atoms | None = None, properties: list[str] | None = None,
                  system_changes: list[str] = all_changes) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        guess, save = self._wavefunctions()
        try:
            result = cp2k_single_point(self.atoms, self.settings, scratch=self.scratch, guess_wfn=guess, save_wfn=save)
        except LabellingFailed as exc:
            if guess is None:
                raise
            logger.info("cp2k from the previous frame's wavefunction failed (%s); again from the atomic guess", exc)
            guess = None
            result = cp2k_single_point(self.atoms, self.settings, scratch=self.scratch, save_wfn=save)
        if save is not None and save.exists():
            self._wfn_numbers = self.atoms.numbers.copy()
        self.last_guess = "previous frame" if guess is not None else "atomic"
        self.last_scf_steps = result.pop("scf_steps")
        result.pop("wall_s")
        self.results = result

    def isolated_atom_energy(self, symbol: str, *, box_ang: float = 12.0) -> float:
        """Spin-polarised energy (eV) of one ``symbol`` atom in a cubic box, at its ground-state multiplicity."""
        atoms = Atoms(symbol, positions=[[box_ang / 2] * 3], cell=[box_ang] * 3, pbc=True)
        settings = self.settings.model_copy(update={"stress": False})
        return float(cp2k_single_point(atoms, settings, scratch=self.scratch,
                                       multiplicity=_ATOM_MULTIPLICITY.get(symbol, 1))["energy"])
