"""`naftiko validate`: find capability files, check them, report what would fail at run time.

The checks reuse the loader, the normalizer and the engine that `naftiko run` uses, so a file
validate passes is a file run accepts. Modules: files (what to check), schema (JSON Schema with
YAML positions), context (what a file declares and who calls what), rules (semantic checks),
compiled (the engine's verdict), runner (one file, never raising), report (text, json, github).
"""
