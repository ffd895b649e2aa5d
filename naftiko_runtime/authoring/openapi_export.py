"""`naftiko export openapi FILE`: the OpenAPI 3.1 document of a REST exposure, without serving it.

It is the very document `GET /openapi.json` answers (exposes/openapi.py builds both from the same
compiled plan), so what CI publishes is what the running exposure describes. The plan is compiled
as `--mock` would compile it: exporting reads no secret and needs no upstream.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from naftiko_runtime.authoring.output import say, write
from naftiko_runtime.build import single_plan
from naftiko_runtime.exposes.openapi import openapi_document
from naftiko_runtime.logs import configure_logging
from naftiko_runtime.plan import Plan, RestApi


def exported(plan: Plan, namespace: str | None) -> RestApi:
    """The REST exposure to export; ValueError naming the choices when `namespace` does not pick one."""
    known = [api.exposure.namespace for api in plan.rest]
    if namespace is not None:
        for api in plan.rest:
            if api.exposure.namespace == namespace:
                return api
        raise ValueError(f"--exposure {namespace}: no REST exposure of that name; known: {', '.join(known) or 'none'}")
    if len(plan.rest) != 1:
        raise ValueError(f"this file has {len(known)} REST exposures ({', '.join(known) or 'none'}); choose one with --exposure NAMESPACE"
                         if known else "this file has no REST exposure to describe")
    return plan.rest[0]


def export_command(args: Any) -> int:
    """Exit 0 (written), 1 (the file cannot be compiled), 2 (usage: no such exposure)."""
    configure_logging("warning")
    plan = single_plan(args.file, say, "naftiko export openapi", "nothing is exported", mock=True)
    if isinstance(plan, int):
        return plan
    try:
        api = exported(plan, args.exposure)
    except ValueError as exc:
        say(f"naftiko export openapi: {exc}")
        return 2
    document = openapi_document(plan, api)
    if args.format == "yaml":
        import yaml

        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)
    else:
        text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    write(text, Path(args.output) if args.output else None)
    return 0
