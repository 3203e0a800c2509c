"""Literature crystallography of the reference phases of a LiPON thin-film cell (data only, no code paths).

Each :class:`CrystalSpec` holds what a paper (or a crystallographic database entry derived from one) gives:
space group, room-temperature lattice parameters and the Wyckoff positions of the asymmetric unit. The
builder in :mod:`tfbsim.structures.crystals` expands them with pymatgen's ``Structure.from_spacegroup``.
Nothing is downloaded: every number below is written out here, with its source.

Settings and conventions
------------------------
- Space groups are given in their standard ITA setting (the one ``Structure.from_spacegroup`` uses).
  Where the source used another setting, the coordinates were transformed; the comment says how.
- Rhombohedral/hexagonal phases use the hexagonal (triple) cell, so Miller indices such as LiCoO2 (003)
  or (104) mean what the thin-film literature means by them.
- ``oxidation_states`` are formal charges; slabs use them for the dipole and polarity report only.

Validation targets (room-temperature experiment; see ``tests/structures/test_crystals.py``)
---------------------------------------------------------------------------------------------
``li`` Im-3m a 3.51 Å, 0.534 g/cm³; ``li2s`` Fm-3m a 5.71 Å, 1.66; ``licoo2`` R-3m a 2.816 c 14.05 Å, ~5.05;
``li3po4`` (γ) Pnma 10.49/6.12/4.93 Å, ~2.43; ``li3po4-beta`` Pmn2₁ 6.115/5.239/4.855 Å, ~2.47; ``li2po2n``
Cmc2₁ 9.07/5.40/4.69 Å, ~2.6; ``li3n`` P6/mmm 3.648/3.875 Å, ~1.29; ``li2o`` Fm-3m 4.61 Å, ~2.02; ``li3p``
P6₃/mmc 4.27/7.59 Å, ~1.43.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CrystalSpec", "CRYSTALS", "FORMAL_CHARGES"]


@dataclass(frozen=True)
class CrystalSpec:
    """Crystallographic description of one phase.

    Attributes
    ----------
    name
        tfbsim name (lower case, used on the command line and as the ``region`` label).
    phase
        Human description of the phase.
    formula
        Chemical formula of the formula unit, conventional order (e.g. ``Li2PO2N``).
    spacegroup
        Hermann–Mauguin symbol in pymatgen spelling (``P6_3/mmc``).
    spacegroup_number
        International Tables number.
    lattice_abc_ang, lattice_angles_deg
        Conventional-cell parameters (Å, degrees).
    sites
        Asymmetric unit: ``(element, Wyckoff letter with multiplicity, (x, y, z) fractional)``.
    reference
        Primary source of the numbers (paper; database code where known).
    density_ref_g_cm3
        Density quoted by the source or computed from its cell (g/cm³), for cross-checks.
    oxidation_states
        Formal charge per element.
    delithiable
        Whether Li can be removed charge-neutrally (redox-active host), i.e. ``li_fraction`` applies.
    notes
        Caveats (setting transformations, provenance of coordinates).
    """

    name: str
    phase: str
    formula: str
    spacegroup: str
    spacegroup_number: int
    lattice_abc_ang: tuple[float, float, float]
    lattice_angles_deg: tuple[float, float, float]
    sites: tuple[tuple[str, str, tuple[float, float, float]], ...]
    reference: str
    density_ref_g_cm3: float
    oxidation_states: dict[str, int] = field(default_factory=dict)
    delithiable: bool = False
    notes: str = ""


#: Formal charges used for slab dipoles when a phase does not give its own.
FORMAL_CHARGES: dict[str, int] = {"Li": 1, "Co": 3, "O": -2, "S": -2, "N": -3, "P": 5}

_CUBIC = (90.0, 90.0, 90.0)
_HEX = (90.0, 90.0, 120.0)

CRYSTALS: dict[str, CrystalSpec] = {
    spec.name: spec
    for spec in [
        CrystalSpec(
            name="li",
            phase="bcc lithium metal",
            formula="Li",
            spacegroup="Im-3m",
            spacegroup_number=229,
            lattice_abc_ang=(3.51, 3.51, 3.51),
            lattice_angles_deg=_CUBIC,
            sites=(("Li", "2a", (0.0, 0.0, 0.0)),),
            reference=(
                "bcc Li at room temperature, a = 3.51 Å: Berliner, Fajen, Smith & Hitterman, Phys. Rev. B 40, "
                "12086 (1989) (neutron powder diffraction, a = 3.5093 Å at 295 K)"
            ),
            density_ref_g_cm3=0.534,
            oxidation_states={"Li": 0},
        ),
        CrystalSpec(
            name="li2s",
            phase="Li2S, antifluorite",
            formula="Li2S",
            spacegroup="Fm-3m",
            spacegroup_number=225,
            lattice_abc_ang=(5.708, 5.708, 5.708),
            lattice_angles_deg=_CUBIC,
            sites=(("S", "4a", (0.0, 0.0, 0.0)), ("Li", "8c", (0.25, 0.25, 0.25))),
            reference=(
                "Zintl, Harder & Dauth, Z. Elektrochem. 40, 588 (1934); powder card JCPDS 77-2145 (a = 5.708 Å), "
                "the card used to index Li2S (d220 = 0.202 nm) in Deng et al., Nano-Micro Lett. 15, 73 (2023)"
            ),
            density_ref_g_cm3=1.64,
        ),
        CrystalSpec(
            name="licoo2",
            phase="layered HT-LiCoO2 (alpha-NaFeO2 type, O3 stacking)",
            formula="LiCoO2",
            spacegroup="R-3m",
            spacegroup_number=166,
            lattice_abc_ang=(2.8156, 2.8156, 14.0542),
            lattice_angles_deg=_HEX,
            # Li on 3a, Co on 3b, O on 6c with z = 0.2396 (equivalently Co 3a / Li 3b / z = 0.2604):
            # this choice gives the CoO6 octahedra (Co–O 1.92 Å) and LiO6 octahedra (Li–O 2.09 Å).
            sites=(("Li", "3a", (0.0, 0.0, 0.0)), ("Co", "3b", (0.0, 0.0, 0.5)), ("O", "6c", (0.0, 0.0, 0.2396))),
            reference=(
                "Orman & Wiseman, Acta Cryst. C40, 12 (1984) (HT-LiCoO2, R-3m, a = 2.8156 Å, c = 14.0542 Å, "
                "z(O) = 0.2396 in the Li-3a setting); cf. Akimoto, Gotoh & Oosawa, J. Solid State Chem. 141, "
                "298 (1998)"
            ),
            density_ref_g_cm3=5.05,
            delithiable=True,
            notes=(
                "LixCoO2 (0.5 <= x <= 1) is made by removing Li; Co oxidation (Co3+ -> Co4+) is implicit in a "
                "machine-learned potential: no charges or magnetic moments are assigned."
            ),
        ),
        CrystalSpec(
            name="li3po4",
            phase="gamma-Li3PO4 (high-temperature form, quenchable)",
            formula="Li3PO4",
            spacegroup="Pnma",
            spacegroup_number=62,
            lattice_abc_ang=(10.4612, 6.1113, 4.9208),
            lattice_angles_deg=_CUBIC,
            # Source setting Pmnb (a = 6.1113, b = 10.4612, c = 4.9208); standard Pnma by a' = b, b' = a,
            # i.e. (x, y, z)_Pnma = (y, x, z)_Pmnb.
            sites=(
                ("Li", "8d", (0.1627, 0.5016, 0.3008)),
                ("Li", "4c", (0.4246, 0.75, 0.2045)),
                ("P", "4c", (0.4115, 0.25, 0.3079)),
                ("O", "8d", (0.3418, 0.0441, 0.2054)),
                ("O", "4c", (0.0503, 0.25, 0.2928)),
                ("O", "4c", (0.0896, 0.75, 0.1223)),
            ),
            reference=(
                "Wang, Chakoumakos, Sales, Kwak & Bates, J. Solid State Chem. 115, 313 (1995) (neutron Rietveld, "
                "gamma-Li3PO4 in Pmnb; AMCSD 0013843); structure type: Zemann, Acta Cryst. 13, 863 (1960)"
            ),
            density_ref_g_cm3=2.445,
            notes="Transformed from Pmnb to the standard Pnma setting by swapping a and b.",
        ),
        CrystalSpec(
            name="li3po4-beta",
            phase="beta-Li3PO4 (low-temperature form)",
            formula="Li3PO4",
            spacegroup="Pmn2_1",
            spacegroup_number=31,
            lattice_abc_ang=(6.115, 5.2394, 4.8554),
            lattice_angles_deg=_CUBIC,
            sites=(
                ("Li", "4b", (0.2481, 0.3277, 0.9860)),
                ("Li", "2a", (0.5, 0.8428, 0.9893)),
                ("P", "2a", (0.0, 0.8243, 0.0)),
                ("O", "4b", (0.20777, 0.68676, 0.8961)),
                ("O", "2a", (0.0, 0.1052, 0.9004)),
                ("O", "2a", (0.5, 0.1814, 0.8172)),
            ),
            reference=(
                "Keffer, Mighell, Mauer, Swanson & Block, Inorg. Chem. 6, 119 (1967) (twinned low-temperature "
                "Li3PO4, Pmn2_1; AMCSD 0012673)"
            ),
            density_ref_g_cm3=2.472,
        ),
        CrystalSpec(
            name="li2po2n",
            phase="crystalline LiPON, SD-Li2PO2N (P-N-P chains of PO2N2 tetrahedra)",
            formula="Li2PO2N",
            spacegroup="Cmc2_1",
            spacegroup_number=36,
            lattice_abc_ang=(9.0692, 5.3999, 4.6856),
            lattice_angles_deg=_CUBIC,
            sites=(
                ("Li", "8b", (0.66567, 0.65946, 0.50156)),
                ("P", "4a", (0.0, 0.65375, 0.49851)),
                ("N", "4a", (0.0, 0.38700, 0.34118)),
                ("O", "8b", (0.13905, 0.80545, 0.41910)),
            ),
            reference=(
                "Senevirathne, Day, Gross, Lachgar & Holzwarth, Solid State Ionics 233, 95 (2013) (SD-Li2PO2N, "
                "Cmc2_1, a = 9.0692, b = 5.3999, c = 4.6856 Å, powder XRD); structure predicted by Du & "
                "Holzwarth, Phys. Rev. B 81, 184106 (2010)"
            ),
            density_ref_g_cm3=2.63,
            notes=(
                "Lattice parameters are the experimental ones (Senevirathne 2013). The fractional coordinates are "
                "those of a DFT-relaxed SD-Li2PO2N cell (same space group and Wyckoff sites, lattice ~1 % larger) "
                "placed in the experimental cell, because the paper's coordinate table could not be read offline; "
                "P-N 1.62 Å and P-O 1.55 Å result."
            ),
        ),
        CrystalSpec(
            name="li3n",
            phase="alpha-Li3N",
            formula="Li3N",
            spacegroup="P6/mmm",
            spacegroup_number=191,
            lattice_abc_ang=(3.648, 3.648, 3.875),
            lattice_angles_deg=_HEX,
            sites=(("N", "1a", (0.0, 0.0, 0.0)), ("Li", "1b", (0.0, 0.0, 0.5)), ("Li", "2c", (1 / 3, 2 / 3, 0.0))),
            reference=(
                "Rabenau & Schulz, J. Less-Common Met. 50, 155 (1976) (alpha-Li3N, a = 3.648, c = 3.875 Å); "
                "cf. Gregory et al., Chem. Mater. 14, 2063 (2002)"
            ),
            density_ref_g_cm3=1.295,
        ),
        CrystalSpec(
            name="li2o",
            phase="Li2O, antifluorite",
            formula="Li2O",
            spacegroup="Fm-3m",
            spacegroup_number=225,
            lattice_abc_ang=(4.6114, 4.6114, 4.6114),
            lattice_angles_deg=_CUBIC,
            sites=(("O", "4a", (0.0, 0.0, 0.0)), ("Li", "8c", (0.25, 0.25, 0.25))),
            reference=(
                "Farley, Hayes, Hull, Hutchings & Vrtis, J. Phys.: Condens. Matter 3, 4761 (1991) (neutron, "
                "a = 4.6114 Å at room temperature)"
            ),
            density_ref_g_cm3=2.02,
        ),
        CrystalSpec(
            name="li3p",
            phase="Li3P, Na3As type (D0_18)",
            formula="Li3P",
            spacegroup="P6_3/mmc",
            spacegroup_number=194,
            lattice_abc_ang=(4.273, 4.273, 7.594),
            lattice_angles_deg=_HEX,
            sites=(
                ("P", "2c", (1 / 3, 2 / 3, 0.25)),
                ("Li", "2b", (0.0, 0.0, 0.25)),
                ("Li", "4f", (1 / 3, 2 / 3, 0.583)),
            ),
            reference=(
                "Brauer & Zintl, Z. Phys. Chem. B 37, 323 (1937) (Li3P, Na3As type, a = 4.273, c = 7.594 Å); "
                "re-investigated by Dong & DiSalvo, Acta Cryst. E 63, i97 (2007)"
            ),
            density_ref_g_cm3=1.43,
            oxidation_states={"Li": 1, "P": -3},
        ),
    ]
}
