"""Configuration models shared by the CLI and YAML files.

Every workflow setting lives in a pydantic model derived from :class:`StrictModel`: unknown keys are an
error (naming the bad key, the file and line, and the allowed keys), values are type-checked, and the
resolved model is what gets written into run directories and provenance. CLI flags override file values
(:func:`load_config` with ``overrides``).

Workflow-specific models (MD, protocols, training, campaigns) live next to the code that uses them and
derive from :class:`StrictModel`; this module holds the machinery. The shared potential settings,
:class:`~tfbsim.workflows.potentials.config.PotentialConfig`, live with the potential factory.
"""

from __future__ import annotations

import hashlib
import json
import os
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError

__all__ = ["StrictModel", "load_config", "validate_config", "config_hash", "dump_yaml"]

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every tfbsim configuration: unknown keys rejected, assignments validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


# --------------------------------------------------------------------------------------------- loading
def _key_lines(text: str) -> dict[tuple, int]:
    """Map each mapping-key path in a YAML document to its 1-based line number."""
    lines: dict[tuple, int] = {}
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines

    def walk(node: Any, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value
                lines[path + (key,)] = key_node.start_mark.line + 1
                walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[path + (i,)] = item.start_mark.line + 1
                walk(item, path + (i,))

    walk(root, ())
    return lines


def _allowed_keys(model_cls: type[BaseModel], loc: tuple) -> list[str]:
    """Field names allowed at ``loc`` (the parent of an offending key), walking nested models."""
    current: Any = model_cls
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = _first_model(fields[part].annotation)
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _first_model(annotation: Any) -> Any:
    """The first BaseModel class inside an annotation such as ``list[Foo] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _format_errors(exc: ValidationError, model_cls: type[BaseModel], source: str, text: str | None) -> str:
    lines = _key_lines(text) if text else {}
    messages = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        line = lines.get(loc)
        at = f"{source}, line {line}" if line else source
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model_cls, loc[:-1])
            messages.append(
                f"{at}: unknown key '{where}'; allowed keys here: {', '.join(allowed) or '(none)'}"
            )
        else:
            messages.append(f"{at}: '{where}': {err['msg']} (got {err.get('input')!r})")
    return "; ".join(messages)


def _deep_merge(base: dict, overrides: dict) -> dict:
    out = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def validate_config(model_cls: type[M], data: dict, *, source: str = "configuration", text: str | None = None) -> M:
    """Validate a dictionary into ``model_cls``, turning pydantic's errors into one :class:`ConfigError`."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, model_cls, source, text)) from None


def load_config(
    path: str | os.PathLike | None,
    model_cls: type[M],
    overrides: dict | None = None,
) -> M:
    """Load a YAML file into ``model_cls``; entries of ``overrides`` that are not ``None`` win.

    Parameters
    ----------
    path
        YAML file, or ``None`` to validate ``overrides`` alone.
    model_cls
        The :class:`StrictModel` subclass describing the file.
    overrides
        Values from command-line flags (nested dicts allowed); ``None`` means "not given on the CLI".

    Raises
    ------
    ConfigError
        The file is missing, is not a YAML mapping, or has unknown keys / bad values (file, line and
        allowed keys are named).
    """
    data: dict = {}
    text = None
    source = "command-line options"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found; check the path") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
        data = loaded
    data = _deep_merge(data, overrides or {})
    return validate_config(model_cls, data, source=source, text=text)


def dump_yaml(model: BaseModel) -> str:
    """The resolved configuration as YAML (what run directories store as ``config.yaml``)."""
    return yaml.safe_dump(model.model_dump(mode="json"), sort_keys=False)


def config_hash(model: BaseModel | dict) -> str:
    """A stable sha256 of a configuration (key order independent), used to refuse changed restarts."""
    data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
