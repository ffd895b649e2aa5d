"""`naftiko validate PATH...`: check capability files for CI and for authors.

Exit codes: 0 when no file has an error, 1 when any has, 2 for usage problems (a path that does
not exist, nothing to check, schemas missing from the installation). See docs/validation.md.
"""

from __future__ import annotations

import argparse
import sys

from naftiko_runtime.check.files import select
from naftiko_runtime.check.report import write
from naftiko_runtime.check.runner import check_file
from naftiko_runtime.check.schema import SCHEMA_FILES, SchemaNotFound, schema_path

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def validate_command(args: argparse.Namespace) -> int:
    only_capabilities = getattr(args, "only_capabilities", False)
    selection = select(args.paths, only_capabilities)
    for problem in selection.problems:
        print(f"naftiko validate: {problem}", file=sys.stderr)
    if not selection.files and not selection.problems and not only_capabilities:
        print("naftiko validate: no capability files found (YAML files with a top-level `ikanos` or `naftiko` key)", file=sys.stderr)
        return EXIT_USAGE
    try:
        for kind in SCHEMA_FILES if args.strict else ("lenient",):
            schema_path(kind)
    except SchemaNotFound as exc:
        print(f"naftiko validate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    results = [check_file(path, args.strict) for path in selection.files]
    write(results, args.format, args.quiet, sys.stdout)
    sys.stdout.flush()
    if selection.problems:
        return EXIT_USAGE
    return EXIT_ERRORS if any(r.count("error") for r in results) else EXIT_OK
