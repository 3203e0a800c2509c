"""Every CLI command against a table of hand-made bad inputs (issue 22).

Each bad input must end with exit code 2, exactly one ``error: ...`` line (no traceback, no ``internal
error``), the file or value at fault named in it, and nothing left behind: the folder holding the inputs and
the outputs is the same before and after the call. Only the EMT/LJ test potentials (or none) are used, so the
whole table runs in seconds.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from tfbsim.cli import app
from tfbsim.structures.io import write_structure


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A folder of good and bad inputs: structures, a small H5MD run, broken copies, configs."""
    from typer.testing import CliRunner

    d = tmp_path_factory.mktemp("fuzz")
    cu = bulk("Cu", cubic=True).repeat((2, 2, 2))
    write_structure(d / "cu.extxyz", cu)
    close = Atoms("Cu2", positions=[[0, 0, 0], [0.05, 0, 0]], cell=[8, 8, 8], pbc=True)
    write_structure(d / "overlap.extxyz", close)
    result = CliRunner().invoke(app, ["md", str(d / "cu.extxyz"), "--model", "emt", "--steps", "6",
                                      "--traj-every", "1", "--checkpoint-every", "3", "--temperature-k", "300",
                                      "-o", str(d / "run")])
    assert result.exit_code == 0, result.output
    h5 = (d / "run" / "traj.h5md").read_bytes()
    (d / "truncated.h5md").write_bytes(h5[: len(h5) // 2])
    text = (d / "cu.extxyz").read_text()
    (d / "truncated.extxyz").write_text(text[: len(text) // 2])
    (d / "junk.extxyz").write_bytes(np.random.default_rng(0).bytes(3000))
    (d / "junk.db").write_bytes(np.random.default_rng(1).bytes(3000))
    (d / "truncated.json").write_text('{"D_cm2_s": 1e-5, "temperature')
    shutil.copytree(d / "run", d / "corrupt_run")
    (d / "corrupt_run" / "checkpoint.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    (d / "existing.txt").write_text("keep me\n")
    (d / "unknown_key.yaml").write_text("temperature_k: 300\nstepz: 10\n")
    (d / "not_yaml.yaml").write_text("a: [1, 2\n")
    (d / "campaign_bad_t.yaml").write_text(
        "name: c\nstructures: [{name: cu, file: cu.extxyz}]\ntemperatures_k: [-300, 900]\n"
        "potential: {model: emt}\nprotocol: [{md: {steps: 2}}]\n")
    (d / "demo_bad.yaml").write_text("composition: Li9PO4\n")
    (d / "demo_unknown.yaml").write_text("quench: {preset: quick, melt_kk: 3000}\n")
    return d


# (id, argv with {d} for the inputs folder, text the error line must contain)
CASES = [
    # build
    ("crystal-unknown", "build crystal nosuchphase -o {d}/x.extxyz", "nosuchphase"),
    ("crystal-suffix", "build crystal li2o -o {d}/x.notaformat", "x.notaformat"),
    ("crystal-supercell", "build crystal li2o --supercell 0 1 1 -o {d}/x.extxyz", "supercell"),
    ("crystal-li-fraction", "build crystal licoo2 --li-fraction 1.5 -o {d}/x.extxyz", "1.5"),
    ("crystal-output-under-file", "build crystal li2o -o {d}/existing.txt/x.extxyz", "existing.txt"),
    ("slab-miller", "build slab li2o --miller 0 0 0 --thickness-ang 8 --vacuum-ang 10 -o {d}/s.extxyz", "Miller"),
    ("slab-suffix", "build slab li2o --miller 1 0 0 --thickness-ang 8 --vacuum-ang 10 -o {d}/s.notaformat", "s.notaformat"),
    ("lipon-charge", "build lipon --composition Li9PO4 --atoms 100 -o {d}/g.extxyz", "Li9PO4"),
    ("lipon-atoms", "build lipon --composition Li3PO4 --atoms -5 -o {d}/g.extxyz", "-5"),
    ("lipon-suffix", "build lipon --composition Li3PO4 --atoms 40 -o {d}/g.notaformat", "g.notaformat"),
    ("interface-phase", "build interface --stack foo:100,lipon -o {d}/i.extxyz", "foo"),
    ("interface-thickness", "build interface --stack li:100,lipon --thickness-ang a,b -o {d}/i.extxyz", "a,b"),
    # analyze
    ("diffusion-truncated-h5md", "analyze diffusion {d}/truncated.h5md --json {d}/o.json", "truncated.h5md"),
    ("coordination-truncated-h5md", "analyze coordination {d}/truncated.h5md --json {d}/o.json", "truncated.h5md"),
    ("interphase-truncated-h5md", "analyze interphase {d}/truncated.h5md --json {d}/o.json", "truncated.h5md"),
    ("diffusion-junk", "analyze diffusion {d}/junk.extxyz --dt-fs 1 --json {d}/o.json", "junk.extxyz"),
    ("coordination-truncated-xyz", "analyze coordination {d}/truncated.extxyz --json {d}/o.json", "truncated.extxyz"),
    ("diffusion-species", "analyze diffusion {d}/run/traj.h5md --species Xx --json {d}/o.json", "Xx"),
    ("diffusion-frames", "analyze diffusion {d}/run/traj.h5md --frames a:b --json {d}/o.json", "a:b"),
    ("arrhenius-truncated-json", "analyze arrhenius {d}/truncated.json {d}/truncated.json --json {d}/o.json",
     "truncated.json"),
    ("arrhenius-missing", "analyze arrhenius {d}/nope.json --json {d}/o.json", "nope.json"),
    ("interphase-bin", "analyze interphase {d}/run/traj.h5md --bin-ang -1 --json {d}/o.json", "-1"),
    # potential
    ("potential-info-unknown", "potential info no-such-model --json {d}/o.json", "no-such-model"),
    ("potential-info-dtype", "potential info emt --dtype float16 --json {d}/o.json", "float16"),
    ("potential-eval-junk", "potential eval {d}/junk.extxyz --model emt --json {d}/o.json", "junk.extxyz"),
    ("potential-eval-truncated", "potential eval {d}/truncated.extxyz --model emt --json {d}/o.json",
     "truncated.extxyz"),
    # md
    ("md-output-is-file", "md {d}/cu.extxyz --model emt --steps 2 -o {d}/existing.txt", "existing.txt"),
    ("md-negative-t", "md {d}/cu.extxyz --model emt --temperature-k -5 -o {d}/r1", "temperature_k"),
    ("md-truncated-structure", "md {d}/truncated.extxyz --model emt --steps 2 -o {d}/r2", "truncated.extxyz"),
    ("md-unknown-key", "md {d}/cu.extxyz --model emt --config {d}/unknown_key.yaml -o {d}/r3", "stepz"),
    ("md-bad-yaml", "md {d}/cu.extxyz --model emt --config {d}/not_yaml.yaml -o {d}/r4", "not_yaml.yaml"),
    ("md-restart-corrupt", "md --restart {d}/corrupt_run", "checkpoint.npz"),
    ("md-restart-missing", "md --restart {d}/no_run", "no_run"),
    ("md-overlap", "md {d}/overlap.extxyz --model emt --steps 2 -o {d}/r5", "Å"),
    # relax
    ("relax-overlap", "relax {d}/overlap.extxyz --model emt -o {d}/r.extxyz", "Å"),
    ("relax-suffix", "relax {d}/cu.extxyz --model emt -o {d}/r.notaformat", "r.notaformat"),
    ("relax-fmax", "relax {d}/cu.extxyz --model emt --fmax-ev-ang -1 -o {d}/r.extxyz", "fmax"),
    ("relax-cell-axes", "relax {d}/cu.extxyz --model emt --cell-axes q -o {d}/r.extxyz", "cell"),
    ("relax-junk", "relax {d}/junk.extxyz --model emt -o {d}/r.extxyz", "junk.extxyz"),
    ("relax-output-under-file", "relax {d}/cu.extxyz --model emt -o {d}/existing.txt/r.extxyz", "existing.txt"),
    # campaigns and the results database
    ("run-missing", "run {d}/nope.yaml", "nope.yaml"),
    ("run-negative-t", "run {d}/campaign_bad_t.yaml", "temperatures_k"),
    ("db-list-missing", "db list {d}/no_campaign --json {d}/o.json", "no_campaign"),
    ("db-list-junk", "db list {d}/junk.db --json {d}/o.json", "junk.db"),
    ("db-export-format", "db export {d}/junk.db --format xml -o {d}/x.csv", "xml"),
    # demo
    ("demo-composition", "demo --config {d}/demo_bad.yaml --out {d}/demo", "Li9PO4"),
    ("demo-quench-key", "demo --config {d}/demo_unknown.yaml --out {d}/demo", "demo_unknown.yaml"),
    ("demo-preset", "demo --preset huge --out {d}/demo", "huge"),
    ("demo-fresh", "demo --model lj --fresh nostage --out {d}/demo", "nostage"),
    # train (evaluate reads a model and labelled data)
    ("train-evaluate-unlabelled", "train evaluate {d}/nope.model --data {d}/cu.extxyz --json {d}/o.json",
     "cu.extxyz"),
    pytest.param("train evaluate {d}/nope.model --data {d}/truncated.extxyz --json {d}/o.json", "truncated.extxyz",
                 id="train-evaluate-truncated"),
    ("train-label-only-nomatch", "train label {d}/cu.extxyz -o {d}/l.extxyz --teacher emt --only split=test",
     "split=test"),
    ("train-compare-dft-labels", "train compare-dft a=labels:{d}/nope.extxyz --data {d}/cu.extxyz --json {d}/o.json",
     "nope.extxyz"),
    ("train-cp2k-check-variant", "train cp2k-check {d}/cu.extxyz -o {d}/c.json --variant TZV3P", "TZV3P"),
    ("train-cp2k-check-base", "train cp2k-check {d}/cu.extxyz -o {d}/c.json --base-labels {d}/cu.extxyz", "card"),
    ("train-label-only-syntax", "train label {d}/cu.extxyz -o {d}/l.extxyz --teacher emt --only split", "KEY=GLOB"),
    ("train-compare-dft-nodata", "train compare-dft v1=emt --data {d}/nope.extxyz --json {d}/o.json", "nope.extxyz"),
    ("train-compare-dft-noneb", "train compare-dft v1=emt --data {d}/cu.extxyz --neb {d} --json {d}/o.json",
     "images.extxyz"),
    ("train-compare-dft-names", "train compare-dft a=emt a=lj --data {d}/cu.extxyz --json {d}/o.json", "a=lj"),
    ("train-make-bundled-key", "train make-bundled --config {d}/demo_unknown.yaml --work {d}/w --out {d}/m",
     "demo_unknown.yaml"),
]


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _param(case):
    return case if hasattr(case, "marks") else pytest.param(*case[1:], id=case[0])


@pytest.mark.parametrize("argv, expected", [_param(c) for c in CASES])
def test_bad_input_exits_2_with_one_error_line_and_writes_nothing(inputs, cli_runner, argv, expected):
    before = _tree(inputs)
    result = cli_runner.invoke(app, argv.format(d=inputs).split())
    output = result.output
    assert result.exit_code == 2, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert "internal error" not in output and "Traceback" not in output
    assert expected in errors[0], output
    assert _tree(inputs) == before, "files were left behind"
