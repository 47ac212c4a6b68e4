"""Build hook for the one compiled part of CodeGym: the zygote's optional native helpers (Linux).

Everything else is configured in ``pyproject.toml``. The extension is optional: without a C compiler the
install still succeeds and the zygote runs its pure-Python path (``codegym/execution/_zygote_native.c``
says what the native path changes; ``bench/executor.py`` measures both).
"""

import sys

from setuptools import Extension, setup

ext_modules = []
if sys.platform.startswith("linux"):
    ext_modules.append(
        Extension(
            "codegym.execution._zygote_native",
            sources=["codegym/execution/_zygote_native.c"],
            optional=True,
        )
    )

setup(ext_modules=ext_modules)
