"""Show sketchlib's real source code inside a chapter, on the website and in Colab alike.

The book never copies library code into a chapter: it displays the code that runs, read with
``inspect.getsource``, so the text cannot drift from the implementation.
"""

from __future__ import annotations

import inspect
import textwrap
import types


def source(obj) -> str:
    """The source text of a module, class, function or method, dedented."""
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError) as exc:
        raise ValueError(f"no source available for {obj!r}: {exc}") from exc


def show_source(obj, *, title: str | None = None):
    """Display ``obj``'s source as a highlighted code block (a Markdown object in Jupyter).

    Outside IPython it returns the plain text instead.
    """
    if title is not None:
        name = title
    elif isinstance(obj, types.ModuleType):
        name = obj.__name__
    else:
        name = f"{obj.__module__}.{getattr(obj, '__qualname__', getattr(obj, '__name__', ''))}".rstrip(".")
    text = source(obj)
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover - IPython is present wherever a notebook runs
        return text
    return Markdown(f"`{name}`\n\n```python\n{text}```")
