"""Validates Kubernetes objects offline against the object model of Debian's
python3-kubernetes (22.x, Kubernetes 1.22): every field must exist in the schema (an
unknown field such as `restartPolicyy` is an error, as with `kubectl apply --validate=strict`),
scalars must have the schema's type, and required fields must be there.

The client predates two fields our manifests need. They are accepted explicitly, in
NEWER_FIELDS below, and nowhere else, so a typo in them still fails."""

import re

from kubernetes.client import models

# Fields added to Kubernetes after the client's schema, with their type and where they are
# allowed. Keep this list short and say why each entry is here.
NEWER_FIELDS = {
    # Kubernetes 1.28 (on by default from 1.29): restartPolicy: Always on an init container
    # makes it a native sidecar. Valid only on initContainers, and only "Always".
    "V1Container": {"restartPolicy": "str"},
    # Kubernetes 1.24 (GA in 1.27): gRPC health probes, grpc.health.v1 on a port.
    "V1Probe": {"grpc": "GRPCAction"},
}
PSEUDO_MODELS = {
    "GRPCAction": {"types": {"port": "int", "service": "str"}, "required": {"port"}},
}

_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\(str, (.+)\)$")


def model_for(obj):
    """The model class name for an object's apiVersion and kind, e.g. apps/v1 StatefulSet
    -> V1StatefulSet."""
    version = str(obj.get("apiVersion", "")).split("/")[-1]
    return version[:1].upper() + version[1:] + str(obj.get("kind", ""))


def validate(obj):
    """Returns a list of errors ("path: message"); empty when the object is valid."""
    errors = []
    name = model_for(obj)
    if not hasattr(models, name):
        return [f"{obj.get('kind')}: no schema for apiVersion {obj.get('apiVersion')}"]
    _check(obj, name, obj.get("kind", name), errors)
    return errors


def _check(value, type_name, path, errors):
    if value is None:  # null is "not set" (kubectl writes creationTimestamp: null).
        return
    m = _LIST.match(type_name)
    if m:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _check(item, m.group(1), f"{path}[{i}]", errors)
        return
    m = _DICT.match(type_name)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        for k, v in value.items():
            _check(v, m.group(1), f"{path}.{k}", errors)
        return
    if type_name == "object":  # IntOrString, Quantity, RawExtension: any scalar or map.
        return
    if type_name in ("str", "datetime", "date"):
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {value!r}")
        return
    if type_name == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{path}: expected an integer, got {value!r}")
        return
    if type_name == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected a boolean, got {value!r}")
        return
    if type_name == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append(f"{path}: expected a number, got {value!r}")
        return
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object ({type_name}), got {value!r}")
        return
    if type_name in PSEUDO_MODELS:
        spec = PSEUDO_MODELS[type_name]
        json_types = dict(spec["types"])
        required = spec["required"]
    else:
        cls = getattr(models, type_name)
        json_types = {cls.attribute_map[a]: t for a, t in cls.openapi_types.items()}
        required = _required(cls)
    extra = NEWER_FIELDS.get(type_name, {})
    for key, v in value.items():
        if key in json_types:
            _check(v, json_types[key], f"{path}.{key}", errors)
        elif key in extra:
            _check(v, extra[key], f"{path}.{key}", errors)
            _check_newer(type_name, key, v, path, errors)
        else:
            errors.append(f"{path}: unknown field \"{key}\" in {type_name}")
    for key in sorted(required - set(value)):
        errors.append(f"{path}: required field \"{key}\" missing in {type_name}")


def _check_newer(type_name, key, value, path, errors):
    if type_name == "V1Container" and key == "restartPolicy":
        if ".initContainers[" not in path:
            errors.append(f"{path}: restartPolicy is allowed on init containers only")
        elif value != "Always":
            errors.append(f"{path}: restartPolicy of an init container must be Always")


_required_cache = {}


def _required(cls):
    """The JSON names of the fields a model's constructor refuses to leave unset (the
    client's own client-side validation)."""
    if cls in _required_cache:
        return _required_cache[cls]
    required = set()
    kwargs = {}
    for _ in range(len(cls.openapi_types) + 1):
        try:
            cls(**kwargs)
            break
        except ValueError as e:
            m = re.search(r"`(\w+)`", str(e))
            if not m or m.group(1) not in cls.attribute_map or m.group(1) in kwargs:
                break
            required.add(cls.attribute_map[m.group(1)])
            kwargs[m.group(1)] = _placeholder(cls.openapi_types[m.group(1)])
    _required_cache[cls] = required
    return required


def _placeholder(type_name):
    if type_name == "int":
        return 0
    if type_name == "bool":
        return False
    if type_name.startswith("list["):
        return []
    if type_name.startswith("dict("):
        return {}
    return "x"
