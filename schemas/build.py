"""Build the per-version JSON Schemas from the two hand-kept sources.

Sources (edit these):
  naftiko-capability-1.0.0-alpha2.strict.json  the official alpha2 schema, reconstructed field by field
  naftiko-capability.json                      everything the runtime reads, every version (lenient)

Built (never edit; `python schemas/build.py` rewrites them, tests/test_schemas.py checks they match):
  naftiko-capability-1.0.0-alpha1.strict.json  alpha2 without what alpha2 added
  ikanos-capability-1.0.0-alpha3.strict.json   alpha2 + the Ikanos changes (alpha3, alpha4)
  ikanos-capability-1.0.0-beta1.strict.json    + binary content (beta1, beta2, beta3)
  ikanos-capability-1.0.0-beta4.strict.json    + MCP cache hints, info.version (beta4)
  <prefix>-capability-<version>.json           the lenient schema narrowed to one schema version, for editors

Each step below is one change of the format (docs/versions.md), written as an edit of the previous
version's schema, so the differences between versions are readable here and nowhere else.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from naftiko_runtime.capability.versions import SCHEMA_OF, SCHEMA_VERSIONS, root_key  # noqa: E402

Schema = dict[str, Any]
STRICT_SOURCE = "naftiko-capability-1.0.0-alpha2.strict.json"
LENIENT_SOURCE = "naftiko-capability.json"
KEBAB = {"$ref": "#/$defs/IdentifierKebab"}
PARAM_NAME = {"pattern": "^[a-zA-Z0-9-_*]+$"}
DISPLAYED = ("Info", "ConsumedHttpResource", "ConsumedHttpOperation", "ExposedResource", "ExposedOperation",
             "McpTool", "McpResource", "McpPrompt", "McpPromptArgument", "Aggregate")
TAGGED = ("ConsumedHttpResource", "ConsumedHttpOperation", "ExposedResource", "ExposedOperation", "McpTool", "AggregateFlow")
# (definition, property) -> (key names: kebab identifiers, or parameter names)
KEYED = {
    ("ConsumesHttp", "inputParameters"): PARAM_NAME, ("ConsumesHttp", "resources"): KEBAB,
    ("ConsumedHttpResource", "inputParameters"): PARAM_NAME, ("ConsumedHttpResource", "operations"): KEBAB,
    ("ConsumedHttpOperation", "inputParameters"): PARAM_NAME, ("ConsumedHttpOperation", "outputParameters"): PARAM_NAME,
    ("ExposesRest", "resources"): KEBAB, ("ExposedResource", "inputParameters"): PARAM_NAME,
    ("ExposedResource", "operations"): KEBAB, ("ExposedOperation", "inputParameters"): PARAM_NAME,
    ("ExposedOperation", "steps"): KEBAB, ("ExposesMcp", "tools"): KEBAB, ("ExposesMcp", "resources"): KEBAB,
    ("ExposesMcp", "prompts"): KEBAB, ("McpTool", "inputParameters"): PARAM_NAME, ("McpTool", "steps"): KEBAB,
    ("McpResource", "steps"): KEBAB, ("McpPrompt", "arguments"): PARAM_NAME, ("ExposesSkill", "skills"): KEBAB,
    ("ExposedSkill", "tools"): KEBAB, ("AggregateFunction", "inputParameters"): PARAM_NAME,
    ("AggregateFunction", "steps"): KEBAB,
}
UNNAMED = ("ConsumedInputParameter", "ConsumedHttpResource", "ConsumedHttpOperation", "ConsumedOutputParameter",
           "ExposedInputParameter", "ExposedResource", "ExposedOperation", "McpTool", "McpToolInputParameter",
           "McpResource", "McpPrompt", "McpPromptArgument", "ExposedSkill", "SkillTool", "AggregateFlow",
           "OrchestratedOutputParameter", "MockOutputParameter", "OperationStepCall", "OperationStepLookup",
           "OperationStepScript")


def load(name: str) -> Schema:
    return json.loads((HERE / name).read_text(encoding="utf-8"))


def walk(node: Any, fn: Callable[[dict], None]) -> None:
    if isinstance(node, dict):
        fn(node)
        for value in list(node.values()):
            walk(value, fn)
    elif isinstance(node, list):
        for value in node:
            walk(value, fn)


def rename_refs(schema: Schema, old: str, new: str) -> None:
    def fn(node: dict) -> None:
        if node.get("$ref") == f"#/$defs/{old}":
            node["$ref"] = f"#/$defs/{new}"
    walk(schema, fn)
    schema["$defs"][new] = schema["$defs"].pop(old)


def rename_prop(definition: Schema, old: str, new: str, description: str | None = None) -> None:
    props = definition["properties"]
    definition["properties"] = {(new if k == old else k): v for k, v in props.items()}
    if description:
        definition["properties"][new]["description"] = description
    if old in definition.get("required", []):
        definition["required"] = [new if r == old else r for r in definition["required"]]


def drop(definition: Schema, *keys: str) -> None:
    for key in keys:
        definition.get("properties", {}).pop(key, None)
        if key in definition.get("required", []):
            definition["required"] = [r for r in definition["required"] if r != key]
            if not definition["required"]:
                del definition["required"]


def header(schema: Schema, version: str, title: str, description: str) -> None:
    versions = [v for v, s in SCHEMA_OF.items() if s == version]
    key = root_key(version)
    props = schema["properties"]
    other = "naftiko" if key == "ikanos" else "ikanos"
    entry = props.pop(other, None) or props.pop(key)
    entry = copy.deepcopy(entry)
    entry["enum"] = versions
    entry["description"] = f"Format version: {', '.join(versions)}."
    schema["properties"] = {key: entry, **{k: v for k, v in props.items() if k != key}}
    schema["required"] = [key]
    prefix = "naftiko" if key == "naftiko" else "ikanos"
    schema["$id"] = f"urn:naftiko-runtime:schemas:{prefix}-capability-{version}.strict"
    schema["title"] = title
    schema["description"] = description


# ----------------------------------------------------------------------------- strict, per version

def alpha1(base: Schema) -> Schema:
    """alpha2 added aggregates and `ref`, control exposes, oauth2, tool hints, script steps, mock
    outputs, MCP exposure authentication, more raw formats: alpha1 has none of them."""
    s = copy.deepcopy(base)
    d = s["$defs"]
    header(s, "1.0.0-alpha1", "Naftiko capability, v1.0.0-alpha1 (strict)",
           "The official Naftiko 1.0.0-alpha1 schema, as this runtime reconstructs it: the alpha2 schema without what alpha2 added. Used by 'naftiko validate --strict' for alpha1 files.")
    drop(d["Capability"], "aggregates")
    for name in ("ExposedOperation", "McpTool"):
        drop(d[name], "ref")
        d[name].pop("allOf", None)
    drop(d["McpTool"], "hints")
    d["McpTool"]["required"] = ["name", "description"]
    drop(d["ExposesMcp"], "authentication")
    drop(d["ConsumedHttpOperation"], "outputSchema")
    d["ConsumedHttpOperation"]["properties"]["outputRawFormat"]["enum"] = ["json", "xml", "avro", "protobuf", "csv", "yaml"]
    for name in ("Aggregate", "AggregateFunction", "AggregateFunctionSemantics", "ExposesControl", "ControlManagement",
                 "ControlScripting", "ControlObservability", "AuthOAuth2", "McpToolHints", "OperationStepScript",
                 "FunctionReference"):
        d.pop(name, None)
    def prune(node: dict) -> None:
        for key in ("allOf", "anyOf", "oneOf"):
            if isinstance(node.get(key), list):
                node[key] = [x for x in node[key] if not _mentions_removed(x, d)]
        if "enum" in node and "control" in node["enum"] and "rest" in node["enum"]:
            node["enum"] = [e for e in node["enum"] if e != "control"]
        if "enum" in node and "script" in node["enum"] and "lookup" in node["enum"]:
            node["enum"] = [e for e in node["enum"] if e != "script"]
        if "enum" in node and "oauth2" in node["enum"] and "bearer" in node["enum"]:
            node["enum"] = [e for e in node["enum"] if e != "oauth2"]
    walk(s, prune)
    return s


def _mentions_removed(node: Any, defs: dict) -> bool:
    found = []
    walk(node, lambda n: found.append(n["$ref"]) if "$ref" in n and n["$ref"].split("/")[-1] not in defs else None)
    return bool(found)


def alpha3(base: Schema) -> Schema:
    """The Ikanos changes: `ikanos:`, keyed maps, display, flows, target, from-imports of every
    part, files of shared parts, tags, tunnel."""
    s = copy.deepcopy(base)
    d = s["$defs"]
    header(s, "1.0.0-alpha3", "Ikanos capability, v1.0.0-alpha3 and alpha4 (strict)",
           "The official Ikanos 1.0.0-alpha3 schema (alpha4 changed only the version string), as this runtime reconstructs it from the alpha2 one and the published changes. Used by 'naftiko validate --strict'.")
    # imports: `from`, for consumes, exposes, aggregates and binds
    rename_refs(s, "ImportedConsumesHttp", "ImportEntry")
    imp = d["ImportEntry"]
    imp["description"] = "Import of one named entry (consumes, exposes, aggregate or bind) from another file: `from` the file, `import` the namespace, optionally `as` a local one."
    rename_prop(imp, "location", "from", "Path of the file holding the entry, relative to this file (e.g. ./shared/notion.yml).")
    imp["properties"]["import"]["description"] = "Namespace of the entry inside that file."
    d["ConsumesEntry"]["if"] = {"anyOf": [{"required": ["from"]}, {"required": ["import"]}]}
    for part, target in (("ExposesEntry", "Exposes"), ("AggregateEntry", "Aggregate"), ("BindEntry", "Binding")):
        d[part] = {"type": "object", "description": f"An inline {target.lower()} entry, or an ImportEntry (recognised by `from`/`import`).",
                   "if": {"anyOf": [{"required": ["from"]}, {"required": ["import"]}]},
                   "then": {"$ref": "#/$defs/ImportEntry"}, "else": {"$ref": f"#/$defs/{target}"}}
    cap = d["Capability"]["properties"]
    cap["exposes"]["items"] = {"$ref": "#/$defs/ExposesEntry"}
    cap["aggregates"]["items"] = {"$ref": "#/$defs/AggregateEntry"}
    cap["binds"]["items"] = {"$ref": "#/$defs/BindEntry"}
    root = s["properties"]
    root["binds"]["items"] = {"$ref": "#/$defs/BindEntry"}
    root["exposes"] = {"type": "array", "description": "A file of shared exposes, imported by others.", "items": {"$ref": "#/$defs/ExposesEntry"}, "minItems": 1}
    root["aggregates"] = {"type": "array", "description": "A file of shared aggregates, imported by others.", "items": {"$ref": "#/$defs/AggregateEntry"}, "minItems": 1}
    s["oneOf"] = [{"required": ["capability"]}] + [{"required": [k], "not": {"required": ["capability"]}} for k in ("consumes", "exposes", "aggregates", "binds")]
    # aggregates: functions (list) -> flows (map)
    rename_refs(s, "AggregateFunction", "AggregateFlow")
    agg = d["Aggregate"]
    rename_prop(agg, "functions", "flows", "Reusable flows, keyed by flow name; referenced as `ref: <aggregate>.<flow>`.")
    agg["properties"]["flows"] = {"type": "object", "description": agg["properties"]["flows"]["description"],
                                  "propertyNames": KEBAB, "additionalProperties": {"$ref": "#/$defs/AggregateFlow"}, "minProperties": 1}
    agg["required"] = ["label", "flows"]
    # named collections: lists of {name} -> maps keyed by name
    for (definition, prop), names in KEYED.items():
        definition = "AggregateFlow" if definition == "AggregateFunction" else definition
        old = d[definition]["properties"][prop]
        new = {"type": "object", "description": (old.get("description", "").rstrip(".") + ", keyed by name.").lstrip(", "),
               "propertyNames": names, "additionalProperties": old["items"]}
        if "minItems" in old:
            new["minProperties"] = old["minItems"]
        d[definition]["properties"][prop] = new
    for name in ("ExposedOperation", "McpTool", "McpResource", "AggregateFlow"):
        walk(d[name], _keyed_orchestrated_outputs)
        d[name]["properties"]["outputParameters"]["type"] = ["array", "object"]
    for name in UNNAMED:
        drop(d[name], "name")
    d["OperationStep"]["required"] = ["type"]
    for branch in d["ExposedOperation"]["allOf"]:
        branch["then"].pop("required", None) if branch["then"].get("required") == ["name"] else None
    orchestrated = d["OrchestratedOutputParameter"]["properties"]
    by_name = {"type": "object", "description": "Fields keyed by name.", "additionalProperties": {"$ref": "#/$defs/OrchestratedOutputParameter"}}
    orchestrated["properties"] = {**by_name, "description": "Fields of an object, keyed by name."}
    orchestrated["items"] = {"description": "Shape of array elements: one output, or fields keyed by name.",
                             "anyOf": [{"$ref": "#/$defs/OrchestratedOutputParameter"}, by_name]}
    # label -> display
    for name in DISPLAYED:
        rename_prop(d[name], "label", "display", "Human-readable name (`label` before 1.0.0-alpha3).")
    rename_prop(d["StepOutputMapping"], "targetName", "target", "Field of the result to write; dots create nested objects (`targetName` before 1.0.0-alpha3).")
    # tags
    for name in TAGGED:
        d[name]["properties"]["tags"] = {"type": "array", "description": "Tags for grouping and discovery.", "items": {"type": "string", "description": "A tag."}}
    # tunnel
    d["TunnelConfig"] = {
        "type": "object", "description": "OpenZiti tunnel to reach the upstream. naftiko-runtime does not dial tunnels: with `fallback: fail` (the default) it refuses the file.",
        "required": ["type", "service", "identity"], "additionalProperties": False,
        "properties": {
            "type": {"description": "Tunnel kind.", "const": "ziti"},
            "service": {"description": "Ziti service to dial.", "type": "string"},
            "identity": {"description": "Ziti identity, best a bind value (`{{secrets.ZITI_IDENTITY}}`).", "type": "string"},
            "fallback": {"description": "When the tunnel cannot be used: fail (default) or direct.", "type": "string", "enum": ["fail", "direct"], "default": "fail"},
        },
    }
    d["ConsumesHttp"]["properties"]["tunnel"] = {"$ref": "#/$defs/TunnelConfig", "description": "Reach the upstream through a tunnel."}
    return s


def _keyed_orchestrated_outputs(node: dict) -> None:
    out = node.get("properties", {}).get("outputParameters") if isinstance(node.get("properties"), dict) else None
    if isinstance(out, dict) and isinstance(out.get("items"), dict) and out["items"].get("$ref", "").split("/")[-1] in ("OrchestratedOutputParameter", "MockOutputParameter"):
        node["properties"]["outputParameters"] = {"type": "object", "additionalProperties": out["items"]}


def beta1(base: Schema) -> Schema:
    """Binary content: raw bytes from an upstream, their media type, a size limit."""
    s = copy.deepcopy(base)
    d = s["$defs"]
    header(s, "1.0.0-beta1", "Ikanos capability, v1.0.0-beta1 to beta3 (strict)",
           "The official Ikanos 1.0.0-beta1 schema (beta2 and beta3 changed only the version string), as this runtime reconstructs it. Used by 'naftiko validate --strict'.")
    d["BinarySize"] = {"type": "string", "description": "A size with a unit: B, KiB, MiB or GiB (e.g. 512KiB, 5MiB).", "pattern": "^\\d+(\\.\\d+)?(B|KiB|MiB|GiB)$"}
    op = d["ConsumedHttpOperation"]["properties"]
    op["outputRawFormat"]["enum"] = op["outputRawFormat"]["enum"] + ["binary"]
    op["outputMediaType"] = {"type": "string", "description": "Media type callers are told (overrides the upstream Content-Type)."}
    op["maxBinarySize"] = {"$ref": "#/$defs/BinarySize", "description": "Largest binary answer accepted (outputRawFormat: binary)."}
    for name in ("ExposesRest", "ExposesMcp"):
        d[name]["properties"]["maxBinarySize"] = {"$ref": "#/$defs/BinarySize", "description": "Largest binary answer of this adapter (default 10MiB)."}
    media = {"type": "string", "description": "A media type (e.g. image/jpeg).", "pattern": "^[a-zA-Z0-9!#$&^_.+-]+/[a-zA-Z0-9!#$&^_.+-]+"}
    exposed = d["ExposedOperation"]
    exposed["properties"]["responses"] = {
        "type": "object", "description": "Response contract per status code, exported to OpenAPI.", "propertyNames": {"pattern": "^[1-5][0-9X]{2}$"},
        "additionalProperties": {"type": "object", "description": "One response.", "additionalProperties": False, "properties": {
            "description": {"type": "string", "description": "What the response is."},
            "content": {"type": "object", "description": "Payload per media type.", "minProperties": 1, "additionalProperties": {
                "type": "object", "description": "`binary: true` for raw bytes, or a `schema`.", "additionalProperties": False, "properties": {
                    "binary": {"type": "boolean", "description": "Raw bytes (needs outputRawFormat: binary)."},
                    "schema": {"type": "object", "description": "JSON Schema of a structured answer."}}}}}}}
    exposed["properties"]["responseBinary"] = {"type": "object", "description": "Shorthand for one binary success response.", "required": ["mediaType"], "additionalProperties": False,
                                               "properties": {"status": {"type": "integer", "minimum": 100, "maximum": 599, "description": "Status (default 200)."},
                                                              "mediaType": media, "description": {"type": "string", "description": "What the bytes are."}}}
    exposed["not"] = {"required": ["responses", "responseBinary"]}
    d["McpResource"]["properties"]["binary"] = {"type": "boolean", "description": "Reads return base64 blob contents (the call must be binary)."}
    d["AggregateFlow"]["properties"]["outputMediaType"] = {"type": "string", "description": "Media type the flow advertises."}
    return s


def beta4(base: Schema) -> Schema:
    """MCP cache hints and the capability's own version."""
    s = copy.deepcopy(base)
    d = s["$defs"]
    header(s, "1.0.0-beta4", "Ikanos capability, v1.0.0-beta4 (strict)",
           "The official Ikanos 1.0.0-beta4 schema, as this runtime reconstructs it. Used by 'naftiko validate --strict'.")
    mcp = d["ExposesMcp"]["properties"]
    mcp["ttlMs"] = {"type": "integer", "minimum": 0, "description": "How long (ms) clients may cache list and read results (0: always stale)."}
    mcp["cacheScope"] = {"type": "string", "enum": ["public", "private"], "description": "Whether shared intermediaries may cache results."}
    d["Info"]["properties"]["version"] = {"type": "string", "description": "The capability's own version."}
    return s


def lenient(source: Schema, version: str) -> Schema:
    """The lenient schema for editors, for the versions of one schema version."""
    s = copy.deepcopy(source)
    versions = [v for v, k in SCHEMA_OF.items() if k == version]
    key = root_key(version)
    other = "naftiko" if key == "ikanos" else "ikanos"
    s["properties"].pop(other, None)
    s["properties"][key]["enum"] = versions
    s.pop("anyOf", None)
    s["required"] = [key]
    s["$id"] = f"urn:naftiko-runtime:schemas:{key}-capability-{version}"
    s["title"] = f"{'Ikanos' if key == 'ikanos' else 'Naftiko'} capability {version} (naftiko-runtime, lenient)"
    s["description"] = (f"What naftiko-runtime reads in a {', '.join(versions)} file: the official form, the other versions' "
                        "spellings (noted by 'naftiko validate') and the dialect forms of real files. For editors; "
                        f"'naftiko validate --strict' checks the official {version} form.")
    return s


def strict_file(version: str) -> str:
    return f"{root_key(version)}-capability-{version}.strict.json"


def lenient_file(version: str) -> str:
    return f"{root_key(version)}-capability-{version}.json"


def build() -> dict[str, str]:
    """File name -> content of every built schema."""
    alpha2 = load(STRICT_SOURCE)
    strict = {"1.0.0-alpha1": alpha1(alpha2), "1.0.0-alpha2": alpha2}
    strict["1.0.0-alpha3"] = alpha3(alpha2)
    strict["1.0.0-beta1"] = beta1(strict["1.0.0-alpha3"])
    strict["1.0.0-beta4"] = beta4(strict["1.0.0-beta1"])
    source = load(LENIENT_SOURCE)
    out = {strict_file(v): strict[v] for v in SCHEMA_VERSIONS if v != "1.0.0-alpha2"}
    out.update({lenient_file(v): lenient(source, v) for v in SCHEMA_VERSIONS})
    return {name: json.dumps(schema, indent=2, ensure_ascii=False) + "\n" for name, schema in out.items()}


if __name__ == "__main__":
    for name, text in build().items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote schemas/{name}")
