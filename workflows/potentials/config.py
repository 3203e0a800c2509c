"""The potential's settings: one typed :class:`PotentialConfig`, carried unchanged end to end.

A :class:`PotentialConfig` is what every configuration (``MDConfig``, ``MeltQuenchConfig``, ``CampaignConfig``,
``DemoConfig``) holds under ``potential:``, what the CLI builds from ``--model/--device/--dtype/--allow-download``
and what :func:`~tfbsim.workflows.potentials.factory.load_potential` takes. The calculator the factory returns
records the configuration it was built from (:func:`~tfbsim.workflows.potentials.factory.potential_config_of`),
so a run directory's ``config.yaml`` can describe the potential actually used and a restart can rebuild it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ...errors import ConfigError
from ..config import StrictModel, validate_config

__all__ = ["PotentialConfig", "as_potential_config"]


class PotentialConfig(StrictModel):
    """Which potential to load (see :func:`tfbsim.workflows.potentials.factory.load_potential`).

    Attributes
    ----------
    model
        Spec: a MACE model path, ``bundled``, ``mace-mp-0:small`` etc., ``chgnet``, ``emt`` or ``lj``.
    device
        ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda[:N]``.
    dtype
        Floating-point precision of the model: ``float32`` (fast MD) or ``float64`` (exact restarts,
        relaxations, NVE checks).
    allow_download
        Permit downloading a MACE foundation model into the mace cache (off by default: no hidden downloads).
    """

    model: str = "bundled"
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    allow_download: bool = False


def as_potential_config(
    value: PotentialConfig | Mapping[str, Any], *, source: str = "potential settings"
) -> PotentialConfig:
    """``value`` as a :class:`PotentialConfig`: returned as is, or a mapping validated into one.

    Parameters
    ----------
    value
        A :class:`PotentialConfig`, or a mapping with its keys (``model``, ``device``, ``dtype``,
        ``allow_download``); entries that are ``None`` mean "not given" and take the default (so a CLI's
        unset flags can be passed through).
    source
        Named in the error message (e.g. ``command-line options``, a task's spec).

    Raises
    ------
    ConfigError
        An unknown key or a bad value (the key, the value and the allowed keys are named), or ``value`` is
        neither a mapping nor a :class:`PotentialConfig`.
    """
    if isinstance(value, PotentialConfig):
        return value
    if isinstance(value, Mapping):
        data = {k: v for k, v in value.items() if v is not None}
        return validate_config(PotentialConfig, data, source=source)
    raise ConfigError(
        f"{source}: expected a PotentialConfig or a mapping with model/device/dtype/allow_download, "
        f"not {type(value).__name__}"
    )
