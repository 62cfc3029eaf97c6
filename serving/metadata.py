"""Model metadata and status as TF Serving builds them, from its official protos.

The metadata of a version is the `SignatureDefMap` of the SavedModel's "serve" meta
graph, read from `saved_model.pb` as it is (own tensor names, `__saved_model_init_op`
included). The REST API renders the response protos with protobuf's JSON mapping as TF
Serving does (`always_print_primitive_fields`, `preserve_proto_field_names`).
"""

import os

from google.protobuf import json_format
from tensorflow.core.protobuf import error_codes_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

SIGNATURE_DEF = "signature_def"
STATES = {
    "START": get_model_status_pb2.ModelVersionStatus.START,
    "LOADING": get_model_status_pb2.ModelVersionStatus.LOADING,
    "AVAILABLE": get_model_status_pb2.ModelVersionStatus.AVAILABLE,
    "UNLOADING": get_model_status_pb2.ModelVersionStatus.UNLOADING,
    "END": get_model_status_pb2.ModelVersionStatus.END,
}


def read_signature_defs(path, tag="serve"):
    """Returns the `SignatureDefMap` of the meta graph tagged `tag` in `path/saved_model.pb`."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if tag in meta_graph.meta_info_def.tags:
            result = get_model_metadata_pb2.SignatureDefMap()
            for name, signature in meta_graph.signature_def.items():
                result.signature_def[name].CopyFrom(signature)
            return result
    tags = [list(m.meta_info_def.tags) for m in saved_model.meta_graphs]
    raise ValueError(f"SavedModel at {path} has no meta graph tagged {tag!r}; tags: {tags}")


def metadata_response(model_name, version, signature_defs):
    """A `GetModelMetadataResponse` holding `signature_defs` (a `SignatureDefMap`)."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = model_name
    response.model_spec.version.value = version
    response.metadata[SIGNATURE_DEF].Pack(signature_defs)
    return response


def status_response(model_name, states):
    """A `GetModelStatusResponse` from `[(version, state, error_code, message), ...]`."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for version, state, code, message in states:
        status = response.model_version_status.add()
        status.version = version
        status.state = STATES[state]
        status.status.error_code = error_codes_pb2.Code.Value(code)
        status.status.error_message = message
    return response


def to_dict(message):
    return json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )


def metadata_json(response):
    """TF Serving's REST rendering of a `GetModelMetadataResponse` (a JSON-ready dict)."""
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF].Unpack(signature_defs)
    return {
        "model_spec": to_dict(response.model_spec),
        "metadata": {SIGNATURE_DEF: to_dict(signature_defs)},
    }
