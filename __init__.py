"""rasoat: the import root. The folders at the top of the repository are its packages (pyproject's
``package-dir`` maps ``rasoat`` to this folder): ``rasoat.core``, ``rasoat.server``, ``rasoat.plugins``,
``rasoat.forms`` and ``rasoat.mobile_export``. Plugin authors write ``from rasoat import hookimpl``."""

from rasoat.core import __version__, hookimpl

__all__ = ["hookimpl", "__version__"]
