"""TF Serving's `--model_config_file`: a text `ModelServerConfig` proto.

    model_config_list {
      config {
        name: "gapnet"
        base_path: "/models/gapnet"
        model_platform: "tensorflow"
        model_version_policy { latest { num_versions: 2 } }
        version_labels { key: "stable" value: 1 }
      }
    }

The file is parsed by protobuf's `text_format` into the official `ModelServerConfig`
(from `tensorflow-serving-api`), so it accepts and rejects exactly what TF Serving does.
Each config needs `name` and `base_path`; `model_platform` must be "tensorflow" when
given. Version policies: `latest { num_versions }` (the default, 1 version), `all`,
`specific { versions }`; `version_labels` are served at `/labels/LABEL`.
"""

import dataclasses
import os

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

POLICIES = ("latest", "all", "specific")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One served model: a name over a base path, a version policy and labels.

    Args:
        name: str. The model name in request URLs and `ModelSpec`s.
        base_path: str. The directory holding integer version subdirectories.
        policy: str. One of `"latest"`, `"all"`, `"specific"`. Defaults to `"latest"`.
        num_versions: int. How many of the highest versions `"latest"` serves.
            Defaults to 1.
        versions: tuple of int. The versions `"specific"` serves. Defaults to `()`.
        labels: dict. Label name -> version. Defaults to `{}`.
    """

    name: str
    base_path: str
    policy: str = "latest"
    num_versions: int = 1
    versions: tuple = ()
    labels: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"`policy` must be one of {POLICIES}. Received: policy={self.policy}")
        if self.num_versions < 1:
            raise ValueError(
                f"`num_versions` must be a positive integer. Received: num_versions={self.num_versions}"
            )

    def aspired(self, versions):
        """The subset of `versions` (integers present on disk) this policy serves."""
        versions = sorted(set(versions))
        if self.policy == "latest":
            return set(versions[-self.num_versions :])
        if self.policy == "all":
            return set(versions)
        return set(versions) & set(self.versions)


def _from_proto(config):
    if not config.name:
        raise ValueError(
            f"model config: a config has no name: {text_format.MessageToString(config, as_one_line=True)!r}"
        )
    if not config.base_path:
        raise ValueError(f"model config: model {config.name!r} has no base_path")
    if config.model_platform not in ("", "tensorflow"):
        raise ValueError(
            f"model config: model_platform of {config.name!r} must be 'tensorflow'. "
            f"Received: model_platform={config.model_platform!r}"
        )
    policy = config.model_version_policy.WhichOneof("policy_choice") or "latest"
    return ModelConfig(
        name=config.name,
        base_path=config.base_path,
        policy=policy,
        num_versions=max(1, config.model_version_policy.latest.num_versions),
        versions=tuple(sorted(config.model_version_policy.specific.versions)),
        labels=dict(config.version_labels),
    )


def parse_model_config(text):
    """Parses a model config file's text into a list of `ModelConfig`s.

    Raises:
        ValueError: naming the problem, for text protobuf's `text_format` rejects and
            for configs TF Serving refuses (no name or base path, another platform,
            repeated names, no models).
    """
    proto = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as error:
        raise ValueError(f"model config: {error}") from None
    if proto.WhichOneof("config") != "model_config_list":
        raise ValueError("model config: expected a model_config_list { config { ... } }")
    models = [_from_proto(config) for config in proto.model_config_list.config]
    if not models:
        raise ValueError("model config: model_config_list holds no config")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model config: model names must be unique. Received: {names}")
    return models


def read_model_config(path):
    """Parses the model config file at `path`; base paths become absolute."""
    with open(path, encoding="utf-8") as f:
        models = parse_model_config(f.read())
    return [dataclasses.replace(m, base_path=os.path.abspath(m.base_path)) for m in models]
