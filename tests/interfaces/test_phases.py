"""Stack parsing: phases, facets (with symmetry equivalents), options and thicknesses."""

from __future__ import annotations

import pytest

from tfbsim.errors import StructureError
from tfbsim.interfaces.phases import DEFAULT_FACETS, FACETS, parse_stack


def test_parse_full_cell_with_options_and_thicknesses():
    phases = parse_stack("li:100,lipon,lco:104:x=0.5:term=0", [12, 20, 15])
    assert [p.name for p in phases] == ["li", "lipon", "licoo2"]
    assert [p.kind for p in phases] == ["crystal", "glass", "crystal"]
    assert phases[0].miller == (1, 0, 0) and phases[2].miller == (1, 0, 4)
    assert phases[2].li_fraction == 0.5 and phases[2].termination == 0
    assert [p.thickness_ang for p in phases] == [12.0, 20.0, 15.0]
    assert parse_stack("licoo2:003/lipon")[0].miller == (0, 0, 1)  # (003) -> (001), slash separator
    assert parse_stack("li2s:1-10,lipon")[0].miller == (1, -1, 0)
    assert parse_stack("li,lipon")[0].miller == tuple(int(c) for c in DEFAULT_FACETS["li"])
    # symmetry-equivalent facet of the cubic catalogue entry 100
    assert parse_stack("li:010,lipon")[0].facet_label == "010"
    # a repeated phase gets its own region label
    assert [p.region for p in parse_stack("li,lipon,li")] == ["li", "lipon", "li_2"]
    assert parse_stack("li,lipon", {"lipon": 9.0})[1].thickness_ang == 9.0


@pytest.mark.parametrize(
    ("stack", "message"),
    [
        ("foo:100,lipon", "valid phases: li, li2s, licoo2"),
        ("li:123,lipon", "valid facets: " + ", ".join(FACETS["li"])),
        ("licoo2:111,lipon", "valid facets: " + ", ".join(FACETS["licoo2"])),
        ("lipon:100,li", "takes no facet"),
        ("li:100:x=0.5,lipon", "licoo2 only"),
        ("li", "at least two phases"),
        ("li,lipon,lipon", "two neighbouring glass"),
        ("li:1x0,lipon", "cannot read facet"),
        ("li:100:foo=1,lipon", "unknown phase option"),
    ],
)
def test_bad_stacks_say_what_is_valid(stack, message):
    with pytest.raises(StructureError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_stack(stack)


def test_bad_thicknesses():
    with pytest.raises(StructureError, match="one per phase"):
        parse_stack("li,lipon", [10.0, 12.0, 14.0])
    with pytest.raises(StructureError, match="positive length"):
        parse_stack("li,lipon", [10.0, -1.0])
    with pytest.raises(StructureError, match="not in the stack"):
        parse_stack("li,lipon", {"li2s": 10.0})
