"""rasoat core: the survey lifecycle, forms, units, storage, indicators and plugin contract."""

from rasoat.core.hooks import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
