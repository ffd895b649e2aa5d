"""`naftiko init [FILE]`: a commented starter capability that validates clean and runs with --mock.

Written in the newest format version (keyed maps, `ikanos:`), the form the official docs teach.

One consumed API (list, get, create on a collection), a REST exposure and an MCP exposure that
serve it, and a bind for its credential. Asks a few questions when stdin is a terminal; takes
flags (and defaults) otherwise, so scripts and CI get the same file every time.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Callable

from naftiko_runtime.authoring.openapi_import import env_prefix, kebab
from naftiko_runtime.capability.versions import LATEST

AUTH_KINDS = ("bearer", "apikey", "none")

_AUTH = {
    "bearer": """\
    # Sent with every call. {{{{{env}}}}} is a bind (declared under `binds` above); the value is
    # read at startup and never appears in a log line or an error.
    authentication:
      type: bearer
      token: "{{{{{env}}}}}"
""",
    "apikey": """\
    # Sent with every call as a header. {{{{{env}}}}} is a bind (declared under `binds` above); the
    # value is read at startup and never appears in a log line or an error.
    authentication:
      type: apikey
      key: X-API-Key
      value: "{{{{{env}}}}}"
      placement: header
""",
    "none": "",
}

_BINDS = """\
# Secrets and settings, read when the capability starts. Without `location`, each key is an
# environment variable (or a line of `naftiko run --env-file .env`). `--mock` needs none.
binds:
- namespace: {name}-env
  keys:
    {env}: {env}

"""

TEMPLATE = """\
# {title}: a starter capability written by `naftiko init`.
#
#   naftiko validate {file}             check it (CI runs the same command)
#   naftiko run {file} --mock           serve it against an in-process fake of the API
#   naftiko call {file} list-items      run one tool once and print its JSON
#
# The guide (docs/guide.md) walks through changing it into your own API's capability.
ikanos: {version}
info:
  display: {title}
  description: {title}. Describe what it lets a person or an agent do; MCP clients show it.

{binds}capability:
  # The HTTP API this capability calls. One entry per API; `naftiko import openapi` writes
  # this part for you from an OpenAPI description.
  consumes:
  - type: http
    namespace: {name}
    baseUri: {base_uri}
{auth}    resources:
      items:
        path: /items
        operations:
          list-items:
            method: GET
            description: List items, optionally filtered by a search text.
            inputParameters:
              q:
                in: query
                type: string
                description: Text to search for.
                required: false
              limit:
                in: query
                type: integer
                description: How many items to return at most.
                required: false
                minimum: 1
                maximum: 100
          create-item:
            method: POST
            description: Create an item.
            inputParameters:          # `in: body` parameters are the fields of the JSON body
              name:
                in: body
                type: string
                description: The item's name.
                required: true
              tags:
                in: body
                type: array
                items:
                  type: string
                description: Labels for the item.
                required: false
      item:
        path: /items/{{{{id}}}}      # {{{{id}}}} is filled from the `id` input, encoded for a path segment
        operations:
          get-item:
            method: GET
            description: Get one item by its id.
            inputParameters:
              id:
                in: path
                type: string
                description: The item's id.
                required: true

  # What this capability serves. Inputs, their types and descriptions come from the consumed
  # operations above, so REST, MCP and the checks on every request always agree.
  exposes:
  - type: rest                      # GET /items, POST /items, GET /items/{{id}}; /openapi.json; /docs
    namespace: {name}-rest
    port: 8080
    description: REST API for {title}.
    resources:
      items:
        path: /items
        operations:
          list-items:
            method: GET
            call: {name}.list-items
          create-item:
            method: POST
            call: {name}.create-item
      item:
        path: /items/{{{{id}}}}
        operations:
          get-item:
            method: GET
            call: {name}.get-item

  - type: mcp                       # one tool per operation, on http://127.0.0.1:9090/mcp
    namespace: {name}-mcp
    port: 9090
    transport: http
    description: Tools for {title}. An agent reads this to decide when to use them.
    tools:
      list-items:
        description: List items, optionally filtered by a search text.
        hints: {{readOnly: true, destructive: false, idempotent: true}}
        call: {name}.list-items
      get-item:
        description: Get one item by its id.
        hints: {{readOnly: true, destructive: false, idempotent: true}}
        call: {name}.get-item
      create-item:
        description: Create an item.
        hints: {{readOnly: false, destructive: false, idempotent: false}}
        call: {name}.create-item
"""


def starter(name: str, base_uri: str, auth: str, env: str, file: str = "capability.yaml") -> str:
    """The starter capability text, in the newest format version, comments included."""
    title = " ".join(w.capitalize() for w in name.split("-"))
    return TEMPLATE.format(
        name=name, title=title, base_uri=base_uri, file=file, version=LATEST,
        binds=_BINDS.format(name=name, env=env) if auth != "none" else "",
        auth=_AUTH[auth].format(env=env),
    )


def _ask(question: str, default: str, check: Callable[[str], str | None], read: Callable[[str], str]) -> str:
    while True:
        answer = read(f"{question} [{default}]: ").strip() or default
        problem = check(answer)
        if problem is None:
            return answer
        print(f"  {problem}", file=sys.stderr)


def check_name(value: str) -> str | None:
    return None if re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", value) else "use lower-case letters, digits and '-' (e.g. weather-api)"


def check_uri(value: str) -> str | None:
    return None if re.match(r"^https?://[^\s/]+", value) else "give an http:// or https:// URL (e.g. https://api.example.com/v1)"


def check_auth(value: str) -> str | None:
    return None if value in AUTH_KINDS else f"one of {', '.join(AUTH_KINDS)}"


def check_env(value: str) -> str | None:
    return None if re.fullmatch(r"[A-Z_][A-Z0-9_]*", value) else "an environment variable name (e.g. WEATHER_API_KEY)"


def init_command(args: Any, read: Callable[[str], str] = input, interactive: bool | None = None) -> int:
    """Exit 0 (written), 1 (the file exists: pass --force), 2 (a flag value is invalid)."""
    from naftiko_runtime.authoring.output import say, verify, write

    out = Path(args.file)
    to_stdout = args.file == "-"
    if not to_stdout and out.exists() and not args.force:
        say(f"naftiko init: {out} exists; pass --force to overwrite it, or give another FILE")
        return 1
    interactive = sys.stdin.isatty() if interactive is None else interactive
    default_name = args.name or kebab(out.resolve().parent.name if not to_stdout else "") or "my-api"
    answers = {"name": default_name, "base_uri": args.base_uri or "https://api.example.com/v1", "auth": args.auth or "bearer"}
    checks = {"name": check_name, "base_uri": check_uri, "auth": check_auth}
    if interactive:
        say("naftiko init: a few questions (Enter keeps the default in brackets)")
        answers["name"] = _ask("Name of the API (lower-case, dashes)", answers["name"], check_name, read)
        answers["base_uri"] = _ask("Base URL of the API", answers["base_uri"], check_uri, read)
        answers["auth"] = _ask(f"How does it authenticate ({'/'.join(AUTH_KINDS)})", answers["auth"], check_auth, read)
    for key, check in checks.items():
        problem = check(answers[key])
        if problem is not None:
            say(f"naftiko init: --{key.replace('_', '-')} {answers[key]}: {problem}")
            return 2
    env = args.env or f"{env_prefix(answers['name'])}_API_KEY"
    if interactive and answers["auth"] != "none":
        env = _ask("Environment variable holding its credential", env, check_env, read)
    elif check_env(env):
        say(f"naftiko init: --env {env}: {check_env(env)}")
        return 2
    text = starter(answers["name"], answers["base_uri"].rstrip("/"), answers["auth"], env, "-" if to_stdout else args.file)
    problems = verify(text, str(out), out.resolve().parent if not to_stdout else Path.cwd())
    if problems:  # a bug in the template, never the user's doing
        say("naftiko init: the starter does not load (a bug; please report it):\n  " + "\n  ".join(problems))
        return 1
    write(text, None if to_stdout else out)
    if not to_stdout:
        secret = f"; set {env} to call the real API" if answers["auth"] != "none" else ""
        say(f"naftiko init: wrote {out}. Next: `naftiko run {out} --mock`{secret}")
    return 0
