"""Optional packages (onnx, onnxruntime, torch), imported only when a feature needs them."""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["require"]


def require(package: str, extra: str) -> Any:
    """Import ``package``, or raise ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ImportError(f"this needs the optional package {package!r}: "
                          f'pip install "tinygrad-bn[{extra}]"') from None
