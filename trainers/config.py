"""Experiment configs: dataclasses whose fields are every knob, with presets and a CLI.

Each field's default lives in the dataclass; a preset is a dict of overrides; the command
line overrides the preset (`--grid-sizes 3 5`, `--no-flip`, ...). The resolved config is
written to the run directory and checked on resume.
"""

import argparse
import dataclasses
import json
import os


def _field_kind(field):
    text = str(field.type)
    if "tuple" in text:
        inner = "int" if "int" in text else "float" if "float" in text else "str"
        return "tuple", inner
    if "bool" in text:
        return "bool", None
    if "int" in text:
        return "int", None
    if "float" in text:
        return "float", None
    return "str", None


def _parse_scalar(kind, text):
    if text is None or text.lower() == "none":
        return None
    return {"int": int, "float": float, "str": str}[kind](text)


def add_arguments(parser, config_cls):
    """Adds one `--flag` per field of `config_cls` (dashes for underscores)."""
    for field in dataclasses.fields(config_cls):
        flag = "--" + field.name.replace("_", "-")
        kind, inner = _field_kind(field)
        doc = field.metadata.get("help", "")
        default = (
            field.default if field.default is not dataclasses.MISSING else field.default_factory()
        )
        help_text = f"{doc} (default: {default!r})"
        if kind == "tuple":
            parser.add_argument(
                flag, nargs="+", default=None, help=help_text, metavar=inner.upper()
            )
        elif kind == "bool":
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            parser.add_argument(flag, default=None, help=help_text, metavar=kind.upper())


def from_args(config_cls, args, presets):
    """Builds a config from parsed args: preset overrides, then explicit flags."""
    values = dict(presets[args.preset])
    for field in dataclasses.fields(config_cls):
        given = getattr(args, field.name, None)
        if given is None:
            continue
        kind, inner = _field_kind(field)
        if kind == "tuple":
            values[field.name] = tuple(_parse_scalar(inner, v) for v in given)
        elif kind == "bool":
            values[field.name] = bool(given)
        else:
            try:
                values[field.name] = _parse_scalar(kind, given)
            except ValueError:
                raise ValueError(
                    f"`--{field.name.replace('_', '-')}` must be {kind}. Received: {given!r}"
                ) from None
    return config_cls(**values)


def to_dict(config):
    return json.loads(json.dumps(dataclasses.asdict(config)))


def write_or_check(config, run_dir, experiment, ignore=("out",)):
    """Writes `config.json` to a new run directory, or checks it matches on resume.

    Raises:
        ValueError: the directory holds another experiment's config, or the same
            experiment with different settings.
    """
    path = os.path.join(run_dir, "config.json")
    resolved = {"experiment": experiment, **to_dict(config)}
    if os.path.exists(path):
        with open(path) as f:
            existing = json.load(f)
        if existing.get("experiment") != experiment:
            raise ValueError(
                f"Run directory {run_dir} holds a config of experiment "
                f"{existing.get('experiment')!r}, not {experiment!r}. Choose another --out."
            )
        different = sorted(
            k
            for k in set(existing) | set(resolved)
            if k not in ignore and existing.get(k) != resolved.get(k)
        )
        if different:
            details = ", ".join(
                f"{k}: {existing.get(k)!r} -> {resolved.get(k)!r}" for k in different
            )
            raise ValueError(
                f"Run directory {run_dir} holds a different {experiment} config ({details}). "
                "Resume with the same settings or choose another --out."
            )
        return resolved
    os.makedirs(run_dir, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(resolved, f, indent=2)
    os.replace(tmp, path)
    return resolved


def parser_for(config_cls, presets, description):
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--preset",
        choices=sorted(presets),
        default="default",
        help="named starting point; flags override it",
    )
    add_arguments(parser, config_cls)
    return parser


__all__ = ["add_arguments", "from_args", "parser_for", "to_dict", "write_or_check"]
