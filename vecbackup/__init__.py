"""vecbackup: back up and restore vector-database collections.

The command line (``vecbackup``) is a thin layer over :mod:`vecbackup.ops`.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
