"""Optional compiled build of the hottest pure modules (issue 19).

The metadata is in setup.cfg.  This file only adds extension modules, and only
when asked: with ``NGSI_LD_COMPILE=1``, mypyc installed in the build environment
and a C compiler, the modules of ``COMPILED`` are compiled to C extensions that
Python imports in place of their ``.py`` (same behaviour, less CPU in the loader's
workers and batch writes: see docs/compiled.md).  When they cannot be built (no
compiler, no Python headers, mypyc failing on a platform) the install goes on with
the pure Python modules.  Without ``NGSI_LD_COMPILE=1`` (the default) nothing is
compiled, and the extensions an earlier editable install left beside the sources
are removed.

Opt-in because it saves little on single requests, the build needs mypy, a C compiler
and minutes, and a compiled module that lies about a type fails at run time (CI builds
these modules in a temporary copy and runs the tests that exercise them: .ci/compiled).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

#: the modules the hot requests spend their own Python time in (docs/compiled.md): the
#: model (parsing and checking a body, its shape templates, expansion, stamping, the
#: history's changes), the embedded store's writer (walk, index, creation and history
#: rows, packs, the usual PATCH's lane, the writer loop, counters), the query's
#: conditions, the service's write and query lanes, the subscription matcher and the
#: HTTP edge of entities; measured as a group (benchmarks/README.md, "(issue 19,
#: compiledall)").  Left pure, though mypyc compiles them: storage/sqlite/known.py
#: (subclasses sqlite3.Connection: a native subclass crashes the connection's init),
#: sql.py (subclasses sqlite3.DatabaseError), store.py (its ``prepare`` staticmethod
#: must pickle for the loader's workers), query/scope.py (a non-str scope must be a
#: 400, not a TypeError), storage/sqlite/query.py (the query-plan properties failed),
#: broker/shaperoutes.py (subclasses aiohttp's AbstractResource: its routing test failed),
#: and four whose calls tests watch by monkeypatching (writes.py, history_batch.py,
#: execute.py, broker/service/direct.py)
COMPILED = [
    "broker/http.py",
    "broker/routes/batch.py",
    "broker/routes/entities.py",
    "broker/routes/query.py",
    "broker/routes/usual_update.py",
    "broker/service/answers.py",
    "broker/service/batch.py",
    "broker/service/caches.py",
    "broker/service/core.py",
    "broker/service/direct_writes.py",
    "broker/service/entities.py",
    "broker/service/hot.py",
    "broker/service/queries.py",
    "ngsi_ld/attributes.py",
    "ngsi_ld/entity.py",
    "ngsi_ld/geojson.py",
    "ngsi_ld/identifiers.py",
    "ngsi_ld/instances.py",
    "ngsi_ld/jsonld/active.py",
    "ngsi_ld/jsonld/compile.py",
    "ngsi_ld/operations.py",
    "ngsi_ld/representation.py",
    "ngsi_ld/shape_slots.py",
    "ngsi_ld/shapes.py",
    "ngsi_ld/temporal/history.py",
    "ngsi_ld/temporal/model.py",
    "ngsi_ld/timeutil.py",
    "ngsi_ld/values.py",
    "ngsi_ld/view.py",
    "storage/discovery.py",
    "storage/sqlite/attribute_walk.py",
    "storage/sqlite/bulk.py",
    "storage/sqlite/conditions.py",
    "storage/sqlite/history_memo.py",
    "storage/sqlite/history_packs.py",
    "storage/sqlite/history_rows.py",
    "storage/sqlite/history_sql.py",
    "storage/sqlite/index.py",
    "storage/sqlite/inserts.py",
    "storage/sqlite/names.py",
    "storage/sqlite/pack_signature.py",
    "storage/sqlite/prepared.py",
    "storage/sqlite/stats.py",
    "storage/sqlite/threads.py",
    "storage/sqlite/usual_patch.py",
    "subscriptions/matching.py",
]


def _warn(message: str) -> None:
    print(f"ngsi-ld-broker: {message}; installing the pure Python modules", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext that falls back to pure Python when any extension fails to build.

    All or nothing: the modules share one mypyc runtime library, so a partial set
    could not be imported; what was built before a failure is removed.
    """

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # CompileError, LinkError, a missing compiler...
            _warn(f"the compiled modules could not be built ({exc})")
            for output in self.get_outputs():
                if os.path.exists(output):
                    os.remove(output)
            self.extensions.clear()


def _remove_in_place() -> None:
    """Remove the extensions an earlier editable install built beside the sources:
    Python would import them in place of the ``.py``."""
    here = Path(__file__).parent
    for source in COMPILED:
        for built in (here / source).parent.glob(Path(source).stem + ".*.so"):
            built.unlink()
    for built in here.glob("*__mypyc.*.so"):
        built.unlink()


def ext_modules() -> list:
    if os.environ.get("NGSI_LD_COMPILE", "") in ("", "0"):
        _remove_in_place()
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("NGSI_LD_COMPILE is set but mypyc is not installed (pip install mypy,"
              " then pip install --no-build-isolation)")
        return []
    try:
        return mypycify(COMPILED, opt_level="3", debug_level="0")
    except BaseException as exc:  # mypyc reports type errors with SystemExit
        _warn(f"mypyc failed ({exc!r})")
        return []


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
