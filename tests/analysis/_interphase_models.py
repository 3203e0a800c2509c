"""Model interfaces with known answers for the interphase tests.

``reference_stack``
    Li metal | Li2O | Li3N | Li3P | γ-Li3PO4 | amorphous LiPON along z, each block built with the project's
    builders (:func:`~tfbsim.structures.crystals.build_crystal`, :func:`~tfbsim.structures.amorphous.build_lipon`),
    strained laterally to one 13.0 × 13.9 Å cell (≤ 7 %, volume kept by the block's z), stacked with
    ``GAP_ANG`` between the outermost atoms of neighbouring blocks. A classification test, not physics.
``growth_frame``
    A synthetic reaction: an fcc O lattice (a = 4.3 Å) whose cells hold 1 P + 7 Li in the tetrahedral sites;
    in a *reacted* cell the P sits in the octahedral hole instead (2.15 Å from six O: no P–O bond; seven Li
    around it), so its O are Li2O-like and its P Li3P-like. A simple-cubic Li "metal" (2.87 Å spacing) sits
    below. Frame ``k`` has the ``k`` cell layers next to the metal reacted: the product layer is ``k a`` thick
    and every frame has the same atoms in the same order.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import make_supercell

from tfbsim.analysis.neighbours import bonds
from tfbsim.structures.amorphous import build_lipon
from tfbsim.structures.crystals import build_crystal

LATERAL_ANG = (13.0, 13.9)
GAP_ANG = 2.5
LIPON = "Li2.94PO3.50N0.31"
# block name, axis permutation (new x, y, z from old axes), repeats along z, hexagonal -> orthorhombic
BLOCKS = (("li", (0, 1, 2), 2, False), ("li2o", (0, 1, 2), 1, False), ("li3n", (1, 0, 2), 2, True),
          ("li3p", (0, 1, 2), 1, True), ("li3po4", (1, 2, 0), 1, False))


def make_whole_z(atoms: Atoms, pairs=("P-O=2.0", "P-N=2.0")) -> Atoms:
    """Shift the atoms of each covalent P–O/N unit to one z-image (units cut by the cell's z boundary)."""
    bl = bonds(atoms, list(pairs))
    n = len(atoms)
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for i, j, s in zip(bl.i, bl.j, bl.shifts):
        adjacency[i].append((j, int(s[2])))
        adjacency[j].append((i, -int(s[2])))
    offset = np.zeros(n, dtype=int)
    seen = np.zeros(n, dtype=bool)
    for root in range(n):
        if seen[root] or not adjacency[root]:
            continue
        seen[root] = True
        todo = [root]
        while todo:
            a = todo.pop()
            for b, s in adjacency[a]:
                if not seen[b]:
                    seen[b] = True
                    offset[b] = offset[a] + s
                    todo.append(b)
    atoms.positions = atoms.positions + np.outer(offset, atoms.cell[2])
    return atoms


def crystal_block(name: str, perm, nz: int, hexagonal: bool) -> Atoms:
    """A crystal repeated and strained to :data:`LATERAL_ANG` (z scaled to keep the volume), units whole."""
    a = build_crystal(name)
    if hexagonal:
        a = make_supercell(a, [[1, 0, 0], [1, 2, 0], [0, 0, 1]])
    lengths = np.diag(a.cell.array).copy()
    assert np.allclose(a.cell.array, np.diag(lengths), atol=1e-6), name
    a = Atoms(a.get_chemical_symbols(), positions=a.positions[:, list(perm)],
              cell=np.diag(lengths[list(perm)]), pbc=True)
    ax, ay, _ = np.diag(a.cell.array)
    nx, ny = max(1, round(LATERAL_ANG[0] / ax)), max(1, round(LATERAL_ANG[1] / ay))
    a = a.repeat((nx, ny, nz))
    a.wrap()
    make_whole_z(a)
    sx, sy = LATERAL_ANG[0] / (nx * ax), LATERAL_ANG[1] / (ny * ay)
    a.positions = a.positions * [sx, sy, 1.0 / (sx * sy)]
    a.set_cell(np.diag([LATERAL_ANG[0], LATERAL_ANG[1], a.cell[2, 2] / (sx * sy)]))
    return a


def reference_stack(seed: int = 0, gap_ang: float = GAP_ANG) -> Atoms:
    """The six-block stack; ``info["blocks"]`` = [(name, z_min, z_max), ...] (Å), regions = block names."""
    blocks = [(name, crystal_block(name, perm, nz, hexa)) for name, perm, nz, hexa in BLOCKS]
    blocks.append(("lipon", make_whole_z(build_lipon(LIPON, 180, lateral_ang=LATERAL_ANG, seed=seed))))
    symbols, positions, regions, ranges = [], [], [], []
    z = 0.0
    for name, block in blocks:
        p = block.positions.copy()
        p[:, 2] += z - p[:, 2].min()
        ranges.append((name, float(p[:, 2].min()), float(p[:, 2].max())))
        z = float(p[:, 2].max()) + gap_ang
        symbols += block.get_chemical_symbols()
        positions.append(p)
        regions += [name] * len(block)
    out = Atoms(symbols, positions=np.vstack(positions), cell=np.diag([*LATERAL_ANG, z]), pbc=True)
    out.new_array("region", np.array(regions))
    out.info["blocks"] = ranges
    return out


def block_boundaries(atoms: Atoms) -> list[float]:
    """Mid-gap positions between consecutive blocks (the last one through the periodic boundary), Å."""
    ranges = atoms.info["blocks"]
    length = atoms.cell[2, 2]
    out = [0.5 * (ranges[k][2] + ranges[k + 1][1]) for k in range(len(ranges) - 1)]
    out.append((0.5 * (ranges[-1][2] + length + ranges[0][1])) % length)
    return out


A_ANG = 4.3
_O_SITES = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
_TETS = np.array([[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)])
_OCT = np.array([0.5, 0.5, 0.5])


def growth_frame(k: int, *, nxy: int = 2, nz: int = 10, metal_layers: int = 4, gap_ang: float = 2.8,
                 both_sides: bool = False, rng: np.random.Generator | None = None,
                 sigma_ang: float = 0.02) -> Atoms:
    """Synthetic frame with the first ``k`` cell layers above the metal reacted (see the module docstring).

    ``both_sides``: the last ``k`` layers (next to the metal through the periodic boundary) react as well.
    """
    lateral = A_ANG * nxy
    spacing = lateral / 3
    symbols, positions, regions = [], [], []
    for layer in range(metal_layers):
        for i in range(3):
            for j in range(3):
                symbols.append("Li")
                positions.append([i * spacing, j * spacing, layer * spacing])
                regions.append("li")
    z0 = (metal_layers - 1) * spacing + gap_ang
    for layer in range(nz):
        reacted = layer < k or (both_sides and layer >= nz - k)
        for i in range(nxy):
            for j in range(nxy):
                origin = np.array([i, j, layer], dtype=float)
                for o in _O_SITES:
                    symbols.append("O")
                    positions.append((origin + o) * A_ANG + [0, 0, z0])
                    regions.append("electrolyte")
                symbols.append("P")
                positions.append((origin + (_OCT if reacted else _TETS[0])) * A_ANG + [0, 0, z0])
                regions.append("electrolyte")
                for t in _TETS[1:]:
                    symbols.append("Li")
                    positions.append((origin + t) * A_ANG + [0, 0, z0])
                    regions.append("electrolyte")
    pos = np.array(positions, dtype=float)
    if rng is not None:
        pos += rng.normal(0.0, sigma_ang, pos.shape)
    length = z0 + nz * A_ANG - A_ANG / 4 + gap_ang
    atoms = Atoms(symbols, positions=pos, cell=[lateral, lateral, length], pbc=True)
    atoms.new_array("region", np.array(regions))
    atoms.info["product_z_ang"] = (z0 - gap_ang / 2, z0 + k * A_ANG - A_ANG / 4)  # mid-gap .. mid-O-planes
    return atoms


def growth_trajectory(ks, times_ps, seed: int = 0, **kwargs) -> list[Atoms]:
    """Frames :func:`growth_frame` (k) with ``info["time_ps"]``."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, t in zip(ks, times_ps):
        frame = growth_frame(int(k), rng=rng, **kwargs)
        frame.info["time_ps"] = float(t)
        frames.append(frame)
    return frames
