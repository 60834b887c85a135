"""Build the compiled core; all metadata lives in pyproject.toml.

Environment knobs:
  OBELISK_DEBUG=1     bounds, wraparound and initialisation checks on (tests of the core)
  OBELISK_ANNOTATE=1  write Cython's annotation HTML (build/cython-*/obelisk/_core/*.html)
  OBELISK_PROFILE=1   line tracing for profilers (slow)
  OBELISK_SYMBOLS=1   a release build that keeps its symbols and debug info, for
                      callgrind and perf (add --force when switching a built tree)

Release builds (none of the above) carry no debug info: the interpreter's own
CFLAGS usually include -g, so -g0 comes last, and the linker strips the symbol
tables (-s with GNU ld, -S -x with Apple's), unless OBELISK_SYMBOLS asks to keep
them. Debug and profile builds keep -g.

Generated C goes to one build/cython-<mode> folder per mode, because Cython
regenerates a .c only when its sources change, not when directives do: a
debug build must never reuse release C, nor the other way round.
"""

import os
import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

CORE = Path("obelisk") / "_core"
MODULES = ["spare", "pool", "book", "sharded", "l2", "position", "risk", "histogram", "limit", "stage"]


def flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


debug = flag("OBELISK_DEBUG")
profile = flag("OBELISK_PROFILE")
symbols = flag("OBELISK_SYMBOLS")

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

annotate = flag("OBELISK_ANNOTATE")
mode = "debug" if debug else "profile" if profile else "release"
macros = [("CYTHON_TRACE_NOGIL", "1")] if profile else []
if debug:   # the portable one-row-at-a-time recompute, which the debug suite then tests
    macros.append(("OBELISK_RECOMPUTE_SCALAR", "1"))
release = not debug and not profile
compile_args = ["-O0", "-g"] if debug else ["-O3", "-fno-math-errno", "-fno-trapping-math"]
link_args: list[str] = []
if release and not symbols and sys.platform != "win32":   # MSVC: no debug info unless asked
    compile_args.append("-g0")
    link_args = ["-Wl,-S,-x"] if sys.platform == "darwin" else ["-s"]

extensions = [
    Extension(
        f"obelisk._core.{name}",
        [str(CORE / f"{name}.pyx")],
        include_dirs=[str(CORE)],       # the hand-written kernels' headers (_recompute.h)
        define_macros=macros,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for name in MODULES
]

# Plain C: the breaker's lean async path (am_send, which Cython's classes cannot define).
lean_breaker = Extension(
    "obelisk.breaker._lean",
    [str(Path("obelisk") / "breaker" / "_lean.c")],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=annotate,
        force=annotate,  # the report is written only when Cython runs
        nthreads=os.cpu_count() or 1,
        build_dir=f"build/cython-{mode}",
    ) + [lean_breaker]
)
