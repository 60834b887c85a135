"""The distribution as users get it: metadata, what the sdist holds, release builds without
debug info, and numpy imported only by the modules that use it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import obelisk

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def need(name: str) -> Path:
    """A file of the source tree; wheel test runs (cibuildwheel) copy only tests/."""
    path = ROOT / name
    if not path.exists():
        pytest.skip(f"{name} is not here (tests run outside the source tree)")
    return path


def test_metadata_is_complete():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads(need("pyproject.toml").read_text())["project"]
    assert {"Homepage", "Source", "Issues", "Documentation"} <= set(project["urls"])
    assert project["authors"] == [{"name": "obelisk developers"}]
    assert project["keywords"] and project["license"] == "MIT"
    classifiers = project["classifiers"]
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    versions = [c.rsplit(" ", 1)[1] for c in classifiers
                if c.startswith("Programming Language :: Python :: 3.")]
    assert versions == ["3.10", "3.11", "3.12", "3.13", "3.14"]
    assert project["requires-python"] == ">=3.10"


def test_the_sdist_holds_the_tests_and_everything_they_import():
    need("MANIFEST.in")
    need("obelisk/_core/book.pyx")
    filelist = pytest.importorskip("setuptools._distutils.filelist")
    files = filelist.FileList()
    files.findall(str(ROOT))
    files.set_allfiles([str(Path(f).relative_to(ROOT)) for f in files.allfiles])
    for line in (ROOT / "MANIFEST.in").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            files.process_template_line(line)
    shipped = set(files.files)
    wanted = {str(p.relative_to(ROOT)) for p in TESTS.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert wanted <= shipped, sorted(wanted - shipped)[:5]
    assert {"tests/hl_server.py", "tests/store_child.py",
            "tests/fixtures/hyperliquid_info.json", "tests/perf/__init__.py"} <= shipped
    assert {f"obelisk/_core/{name}.pyx" for name in ("book", "pool", "position")} <= shipped
    assert "obelisk/breaker/_lean.c" in shipped          # hand-written, not generated
    assert not [f for f in shipped
                if f.endswith((".c", ".so", ".pyc")) and f != "obelisk/breaker/_lean.c"]
    assert not [f for f in shipped if f.startswith(("benchmarks/", ".github/", "build/"))]


def extension_flags(**env: str) -> dict:
    """The compile and link flags setup.py gives the extensions, without building them."""
    probe = ("import json, runpy, Cython.Build, setuptools\n"
             "seen = {}\n"
             "Cython.Build.cythonize = lambda extensions, **options: extensions\n"
             "setuptools.setup = lambda **kw: seen.update(kw)\n"
             "runpy.run_path('setup.py')\n"
             "ext = seen['ext_modules'][0]\n"
             "print(json.dumps({'compile': ext.extra_compile_args, 'link': ext.extra_link_args,"
             " 'count': len(seen['ext_modules'])}))\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OBELISK_")}
    done = subprocess.run([sys.executable, "-c", probe], cwd=need("setup.py").parent,
                          capture_output=True, text=True, env={**clean, **env}, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(sys.platform == "win32", reason="MSVC writes no debug info by default")
def test_release_builds_carry_no_debug_info_and_debug_builds_keep_it():
    release = extension_flags()
    assert release["compile"][-1] == "-g0"          # after the interpreter's own -g
    assert release["link"] == (["-Wl,-S,-x"] if sys.platform == "darwin" else ["-s"])
    debug = extension_flags(OBELISK_DEBUG="1")
    assert "-g" in debug["compile"] and "-g0" not in debug["compile"] and debug["link"] == []
    profile = extension_flags(OBELISK_PROFILE="1")
    assert "-g0" not in profile["compile"] and profile["link"] == []


def imported_after(statement: str) -> dict:
    code = (f"import json, sys\n{statement}\n"
            "print(json.dumps({m: m in sys.modules for m in "
            "('numpy', 'obelisk._core.book', 'sqlite3', 'httpx')}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("statement", ["import obelisk", "import obelisk.hyperliquid",
                                       "import obelisk.errors", "import obelisk.breaker"])
def test_light_imports_load_neither_numpy_nor_the_core(statement):
    loaded = imported_after(statement)
    assert not loaded["numpy"] and not loaded["obelisk._core.book"], loaded


def test_a_name_loads_what_it_needs():
    assert imported_after("from obelisk import OrderBook")["numpy"]
    assert imported_after("import obelisk; obelisk.TraceStore")["sqlite3"]


def test_every_exported_name_still_resolves():
    for name in obelisk.__all__:
        assert getattr(obelisk, name) is not None, name
    assert set(obelisk.__all__) <= set(dir(obelisk))
    with pytest.raises(AttributeError, match="no attribute 'NotAThing'"):
        obelisk.NotAThing  # noqa: B018
    from obelisk import OrderBook, TraceStore, errors
    assert OrderBook.__module__ == "obelisk._core.book" and errors.__name__ == "obelisk.errors"
    assert TraceStore.__name__ == "TraceStore"
