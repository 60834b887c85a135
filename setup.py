"""Build the compiled core; all metadata lives in pyproject.toml.

Environment knobs:
  OBELISK_DEBUG=1     bounds, wraparound and initialisation checks on (tests of the core)
  OBELISK_ANNOTATE=1  write Cython's annotation HTML beside each .pyx
  OBELISK_PROFILE=1   line tracing for profilers (slow)
"""

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

CORE = Path("obelisk") / "_core"
MODULES = ["pool", "book"]


def flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


debug = flag("OBELISK_DEBUG")
profile = flag("OBELISK_PROFILE")

directives = {
    "language_level": "3",
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
    "profile": profile,
    "linetrace": profile,
}

macros = [("CYTHON_TRACE_NOGIL", "1")] if profile else []
compile_args = ["-O0", "-g"] if debug else ["-O3"]

extensions = [
    Extension(
        f"obelisk._core.{name}",
        [str(CORE / f"{name}.pyx")],
        define_macros=macros,
        extra_compile_args=compile_args,
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=flag("OBELISK_ANNOTATE"),
        nthreads=os.cpu_count() or 1,
        build_dir=None,
    )
)
