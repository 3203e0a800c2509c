"""The gpu engine's physics on the CPU: model on tensors vs MACE's ASE calculator, integrators vs the ASE engine
(same forces and the same noise → same trajectory), NVE conservation, canonical NVT statistics.

The engine runs on any torch device; here the CPU. Tests skip when the ``gpu`` extra (vesin-torch) is missing.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("vesin_torch")

from _gpu_util import dilute_gas, lipon_like, md_config  # noqa: E402
from ase import Atoms  # noqa: E402

from tfbsim.errors import ConfigError  # noqa: E402
from tfbsim.workflows.md.run import run_md  # noqa: E402
from tfbsim.workflows.md.config import MDConfig  # noqa: E402


@pytest.fixture(scope="module")
def calc64(tiny_mace_path):
    from tfbsim.workflows.potentials.factory import load_potential

    return load_potential(str(tiny_mace_path), device="cpu", dtype="float64")


# ------------------------------------------------------------------------------------------ the model
def test_energies_forces_stress_equal_the_ase_calculator_alone_and_batched(calc64):
    import torch

    from tfbsim.workflows.md.engines.torch_model import TorchMACE

    a, b = lipon_like(seed=3), lipon_like(n_li=6, n_o=8, n_n=1, n_p=2, box=7.0, seed=4)
    reference = []
    for atoms in (a, b):
        atoms.calc = calc64
        reference.append((atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)))
    model = TorchMACE.from_calculator(calc64)
    graph = model.graph([a.numbers, b.numbers], [a.pbc, b.pbc])
    positions = torch.tensor(np.vstack([a.positions, b.positions]))
    cells = torch.tensor(np.stack([a.cell.array, b.cell.array]))
    energy, forces, stress = model.evaluate(graph, positions, cells, stress=True)
    for k, (lo, hi) in enumerate([(0, len(a)), (len(a), len(a) + len(b))]):
        e_ref, f_ref, s_ref = reference[k]
        assert abs(float(energy[k]) - e_ref) < 1e-10 * max(1.0, abs(e_ref))
        np.testing.assert_allclose(forces[lo:hi].numpy(), f_ref, atol=1e-10)
        np.testing.assert_allclose(stress[k].numpy(), s_ref, atol=1e-12)
    # the stress path changes forces by exact zeros only: trajectories do not depend on when stress is taken
    _, forces_no_stress, none = model.evaluate(graph, positions, cells, stress=False)
    assert none is None and torch.equal(forces, forces_no_stress)


def test_float32_model_agrees_with_the_ase_path_to_float32_rounding(tiny_mace_path):
    import torch

    from tfbsim.workflows.md.engines.torch_model import TorchMACE
    from tfbsim.workflows.potentials.factory import load_potential

    calc = load_potential(str(tiny_mace_path), device="cpu", dtype="float32")
    atoms = lipon_like(seed=7)
    atoms.calc = calc
    e_ref, f_ref = atoms.get_potential_energy(), atoms.get_forces()
    model = TorchMACE.from_calculator(calc)
    assert model.dtype == torch.float32
    energy, forces, _ = model.evaluate(model.graph([atoms.numbers], [atoms.pbc]), torch.tensor(atoms.positions),
                                       torch.tensor(atoms.cell.array)[None])
    assert abs(float(energy[0]) - e_ref) < 1e-5 * abs(e_ref)
    np.testing.assert_allclose(forces.numpy(), f_ref, atol=2e-5 * np.abs(f_ref).max())


def test_non_mace_potential_and_unsupported_ensembles_are_config_errors():
    from ase.calculators.emt import EMT

    from tfbsim.workflows.config import validate_config

    with pytest.raises(ConfigError, match="MACE models only"):
        run_md(lipon_like(), EMT(), md_config("nve", engine="gpu"))
    with pytest.raises(ConfigError, match="engine 'gpu' integrates nve, nvt-langevin and nvt-bussi"):
        validate_config(MDConfig, {"engine": "gpu", "ensemble": "nvt-nhc"})
    with pytest.raises(ConfigError, match="engine 'gpu'"):
        validate_config(MDConfig, {"engine": "gpu", "ensemble": "npt-mtk"})


# ------------------------------------------------------------------------------------- integrators
def _patch_numpy_noise(monkeypatch, seed: int) -> None:
    """Feed the gpu engine the noise ASE's integrators draw from ``default_rng(seed)``, in ASE's order."""
    import torch

    from tfbsim.workflows.md.engines.gpu_engine import GpuBatch

    rng = np.random.default_rng(seed)

    def draw_noise(self, k, n_atoms):
        xi = rng.standard_normal(size=(n_atoms, 3))
        eta = rng.standard_normal(size=(n_atoms, 3))
        return torch.as_tensor(xi), torch.as_tensor(eta)

    def draw_bussi(self, k):
        r1 = rng.standard_normal()
        chi2 = 2.0 * rng.standard_gamma(0.5 * (self.ndof[k] - 1))
        return torch.tensor(r1, dtype=torch.float64), torch.tensor(chi2, dtype=torch.float64)

    monkeypatch.setattr(GpuBatch, "draw_noise", draw_noise)
    monkeypatch.setattr(GpuBatch, "draw_bussi", draw_bussi)


def _with_velocities(atoms: Atoms, temperature_k: float, seed: int) -> Atoms:
    """Maxwell–Boltzmann momenta on the structure itself, so that neither engine draws from its generator."""
    from ase import units

    out = atoms.copy()
    rng = np.random.default_rng(seed + 1000)
    masses = out.get_masses()
    p = rng.standard_normal((len(out), 3)) * np.sqrt(masses * units.kB * temperature_k)[:, None]
    out.set_momenta(p - masses[:, None] * p.sum(axis=0) / masses.sum())
    return out


@pytest.mark.parametrize("ensemble,fixed,schedule", [
    ("nve", False, None),
    ("nvt-langevin", False, [[0, 600], [0.015, 900]]),
    ("nvt-langevin", True, None),
    ("nvt-bussi", False, [[0, 600], [0.015, 300]]),
])
def test_trajectory_equals_the_ase_engine_for_the_same_noise(monkeypatch, calc64, ensemble, fixed, schedule):
    """Same start, same forces, same Gaussian/χ² draws → the two engines' trajectories agree to rounding
    (fixed atoms, the held centre of mass and temperature ramps included)."""
    atoms = _with_velocities(lipon_like(seed=11), 600, seed=11)
    if fixed:
        atoms.arrays["fixed"] = np.arange(len(atoms)) < 4
        atoms.set_momenta(np.where(atoms.arrays["fixed"][:, None], 0.0, atoms.get_momenta()))
    config = md_config(ensemble, initial_temperature_k=None, temperature_schedule=schedule, seed=21)
    ase_run = run_md(atoms, calc64, config)
    _patch_numpy_noise(monkeypatch, seed=21)
    gpu_run = run_md(atoms, calc64, config.model_copy(update={"engine": "gpu"}))
    assert gpu_run.summary["engine"]["name"] == "gpu"
    assert gpu_run.steps_done == ase_run.steps_done == 20
    np.testing.assert_allclose(gpu_run.atoms.positions, ase_run.atoms.positions, atol=1e-9)
    np.testing.assert_allclose(gpu_run.atoms.get_momenta(), ase_run.atoms.get_momenta(), atol=1e-9)
    for column in ("T_k", "epot_ev", "etot_ev", "target_T_k", "pressure_gpa"):
        np.testing.assert_allclose(gpu_run.log[column], ase_run.log[column], rtol=1e-9, atol=1e-9)
    if ensemble != "nvt-langevin":
        np.testing.assert_allclose(gpu_run.log["conserved_ev"], ase_run.log["conserved_ev"], atol=1e-9)
    if fixed:
        np.testing.assert_array_equal(gpu_run.atoms.positions[:4], atoms.positions[:4])
    else:  # centre of mass held
        com0 = atoms.get_center_of_mass()
        np.testing.assert_allclose(gpu_run.atoms.get_center_of_mass(), com0, atol=1e-10)


def test_nve_energy_conservation_is_as_good_as_the_ase_engine(calc64):
    atoms = lipon_like(seed=12)
    config = md_config("nve", steps=40, timestep_fs=0.5, log_every=1, initial_temperature_k=300)
    ase_run = run_md(atoms, calc64, config)
    gpu_run = run_md(atoms, calc64, config.model_copy(update={"engine": "gpu"}))
    drift_ase = np.ptp(ase_run.log["etot_ev"])
    drift_gpu = np.ptp(gpu_run.log["etot_ev"])
    fluct_kin = np.std(gpu_run.log["ekin_ev"])
    assert drift_gpu < 0.05 * fluct_kin  # conserved far better than the kinetic energy fluctuates
    assert drift_gpu < 1.5 * drift_ase + 1e-9


def _canonical_check(temps: np.ndarray, target_k: float, ndof: int, rel_mean: float, rel_std: float) -> None:
    """Kinetic temperature of a canonical ensemble: mean T, std T = T sqrt(2/ndof)."""
    assert abs(temps.mean() / target_k - 1.0) < rel_mean, temps.mean()
    expected_std = target_k * np.sqrt(2.0 / ndof)
    assert abs(temps.std() / expected_std - 1.0) < rel_std, (temps.std(), expected_std)


def _replica_temperatures(calc, ensemble, n_replicas, steps, seed0=0, equil=None, **kw):
    from tfbsim.workflows.md.batch import run_md_batch

    atoms = dilute_gas()
    configs = [md_config(ensemble, steps=steps, log_every=5, seed=seed0 + i, engine="gpu", temperature_k=500,
                       initial_temperature_k=500, **kw) for i in range(n_replicas)]
    results = run_md_batch([atoms] * n_replicas, calc, configs)
    assert all(r.status == "completed" for r in results)
    ndof = 3 * len(atoms) - 3
    equil = steps // 5 if equil is None else equil
    temps = np.concatenate([r.log["T_k"][r.log["step"] >= equil] for r in results])
    return temps, ndof


def test_nvt_temperature_statistics_are_canonical_fast(calc64):
    """16 Langevin replicas of a 40-atom gas in one batch, 60 steps after a Maxwell–Boltzmann start; rows
    after 1.5 friction times: mean and spread of T (loose; a wrong noise or friction amplitude fails it)."""
    temps, ndof = _replica_temperatures(calc64, "nvt-langevin", 16, 60, friction_ps_inv=50.0, equil=30)
    _canonical_check(temps, 500.0, ndof, rel_mean=0.1, rel_std=0.35)


@pytest.mark.slow
@pytest.mark.parametrize("ensemble", ["nvt-langevin", "nvt-bussi"])
def test_nvt_temperature_statistics_are_canonical_slow(calc64, ensemble):
    """8 replicas × 6000 steps: mean T within 2 %, its spread within 8 % of the canonical sqrt(2/ndof) T, and
    the kinetic-energy histogram against the Gamma(ndof/2, kT) law (Kolmogorov–Smirnov on decorrelated rows)."""
    from ase import units
    from scipy import stats

    temps, ndof = _replica_temperatures(calc64, ensemble, 8, 6000, seed0=100)
    _canonical_check(temps, 500.0, ndof, rel_mean=0.02, rel_std=0.08)
    ekin = 0.5 * ndof * units.kB * temps[::4]
    result = stats.kstest(ekin, stats.gamma(a=ndof / 2, scale=units.kB * 500.0).cdf)
    assert result.pvalue > 1e-3, result


# --------------------------------------------------------------------------------------------- CUDA
@pytest.mark.gpu
@pytest.mark.parametrize("cueq", [False, True])
def test_cuda_engine_agrees_with_the_cpu(tiny_mace_path, cueq):
    """On a GPU: forces equal the CPU's to float64 rounding (cuEquivariance too, when installed), and a short
    batched Langevin run stays finite and on the device."""
    import torch

    from tfbsim.workflows.md.engines.torch_model import TorchMACE, cueq_available
    from tfbsim.workflows.md.batch import run_md_batch
    from tfbsim.workflows.potentials.factory import load_potential

    if cueq and not cueq_available():
        pytest.skip("cuequivariance-torch not installed")
    atoms = lipon_like(seed=81)
    cpu = TorchMACE.from_calculator(load_potential(str(tiny_mace_path), device="cpu", dtype="float64"), cueq=False)
    calc = load_potential(str(tiny_mace_path), device="cuda", dtype="float64")
    gpu = TorchMACE.from_calculator(calc, cueq=cueq)
    assert gpu.device.type == "cuda" and gpu.cueq == cueq
    results = []
    for model in (cpu, gpu):
        graph = model.graph([atoms.numbers], [atoms.pbc])
        positions = torch.tensor(atoms.positions, device=model.device)
        cells = torch.tensor(atoms.cell.array, device=model.device)[None]
        results.append([t.cpu() for t in model.evaluate(graph, positions, cells, stress=True)])
    for a, b in zip(results[0], results[1]):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-9)
    runs = run_md_batch([atoms, lipon_like(seed=82)], calc, md_config("nvt-langevin", engine="gpu", steps=20),
                        cueq=cueq)
    assert all(r.steps_done == 20 and np.isfinite(r.temperature_mean_k) for r in runs)
    assert runs[0].summary["engine"]["device"].startswith("cuda")


@pytest.mark.slow
def test_cueq_conversion_gives_the_same_forces_and_leaves_torch_defaults_alone(calc64):
    """cuEquivariance's torch fallback runs on the CPU: the converted model (mace's converter) must give the
    e3nn model's energies and forces, and torch's default dtype must be what it was (the converter sets it)."""
    import torch

    from tfbsim.workflows.md.engines.torch_model import TorchMACE, cueq_available

    if not cueq_available():
        pytest.skip("cuequivariance-torch not installed (pip install 'tfbsim[cueq]')")
    atoms = lipon_like(seed=91)
    default = torch.get_default_dtype()
    plain = TorchMACE.from_calculator(calc64, cueq=False)
    converted = TorchMACE.from_calculator(calc64, cueq=True)
    assert converted.cueq and torch.get_default_dtype() == default
    out = []
    for model in (plain, converted):
        graph = model.graph([atoms.numbers], [atoms.pbc])
        out.append(model.evaluate(graph, torch.tensor(atoms.positions), torch.tensor(atoms.cell.array)[None]))
    assert abs(float(out[0][0][0] - out[1][0][0])) < 1e-9
    np.testing.assert_allclose(out[1][1].numpy(), out[0][1].numpy(), atol=1e-9)
