"""``python -m codegym``: the same command-line tool as ``codegym``."""

from codegym.cli import main

raise SystemExit(main())
