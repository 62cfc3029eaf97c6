"""TF Serving's text `model_config_list` format, the subset a REST server needs.

    model_config_list {
      config { name: "gapnet" base_path: "/models/gapnet" model_platform: "tensorflow" }
      config { name: "permutenet" base_path: "/models/permutenet" }
    }

Each `config` needs `name` and `base_path`; `model_platform` must be "tensorflow" when
given; other fields (`model_version_policy`, labels) are accepted and ignored: the
server always serves the latest version, as TF Serving does by default.
"""

import re

_TOKEN = re.compile(
    r'\s*(?:(#[^\n]*)|([A-Za-z_][A-Za-z0-9_]*)|("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|([{}:])|(-?[0-9.]+))'
)


def _tokens(text):
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            if text[position:].strip() == "":
                return
            raise ValueError(f"model config: cannot parse near {text[position : position + 30]!r}")
        position = match.end()
        comment, ident, string, punct, number = match.groups()
        if comment:
            continue
        if ident:
            yield "ident", ident
        elif string:
            yield "string", bytes(string[1:-1], "utf-8").decode("unicode_escape")
        elif punct:
            yield "punct", punct
        elif number:
            yield "number", number


def _parse_block(tokens):
    """Parses `key: value` and `key { ... }` pairs until `}`; returns a list of pairs."""
    items = []
    for kind, value in tokens:
        if kind == "punct" and value == "}":
            return items
        if kind != "ident":
            raise ValueError(f"model config: expected a field name, got {value!r}")
        key = value
        kind, value = next(tokens, (None, None))
        if kind == "punct" and value == ":":
            kind, value = next(tokens, (None, None))
            if kind == "punct" and value == "{":
                items.append((key, _parse_block(tokens)))
            elif kind in ("string", "number", "ident"):
                items.append((key, value))
            else:
                raise ValueError(f"model config: field {key!r} has no value")
        elif kind == "punct" and value == "{":
            items.append((key, _parse_block(tokens)))
        else:
            raise ValueError(f"model config: field {key!r} must be followed by ':' or '{{'")
    return items


def parse_model_config(text):
    """Returns `[{"name": ..., "base_path": ...}, ...]` from a model config file's text."""
    tokens = _tokens(text)
    top = _parse_block(iter(list(tokens)))
    lists = [value for key, value in top if key == "model_config_list"]
    if len(lists) != 1:
        raise ValueError("model config: expected exactly one model_config_list { ... }")
    models = []
    for key, value in lists[0]:
        if key != "config":
            continue
        fields = dict((k, v) for k, v in value if not isinstance(v, list))
        if "name" not in fields or "base_path" not in fields:
            raise ValueError(f"model config: each config needs name and base_path, got {fields}")
        platform = fields.get("model_platform", "tensorflow")
        if platform != "tensorflow":
            raise ValueError(f"model config: model_platform must be 'tensorflow', got {platform!r}")
        models.append({"name": fields["name"], "base_path": fields["base_path"]})
    if not models:
        raise ValueError("model config: model_config_list holds no config")
    names = [m["name"] for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model config: model names must be unique, got {names}")
    return models
