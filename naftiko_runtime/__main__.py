"""`python -m naftiko_runtime` is the `naftiko` command."""

from naftiko_runtime.cli import main

raise SystemExit(main())
