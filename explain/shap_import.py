"""Importing shap without letting it pin the importer's memory.

shap records the optional imports it could not make (cv2, pyspark, the CUDA extension) in a
module-level dict, exceptions and tracebacks included (shap.utils._general.import_errors). A
traceback holds its frames, and each frame its caller (f_back), so the first function to import
shap - with every local of every function above it - stayed alive for the life of the process.
In `sote-risk train --all` that was each problem's feature tables (3 GB a problem at region size).
"""

from __future__ import annotations

from types import ModuleType


def load_shap() -> ModuleType:
    """shap, with the tracebacks of its recorded import errors dropped (the messages stay)."""
    import shap
    from shap.utils import _general

    for entry in getattr(_general, "import_errors", {}).values():
        error = entry[1] if isinstance(entry, tuple) and len(entry) > 1 else None
        while isinstance(error, BaseException):  # the error and whatever it was raised from
            error.__traceback__ = None
            error = error.__cause__ or error.__context__
    return shap
