"""The version of vecbackup (also the ``tool_version`` every manifest records)."""

__version__ = "0.5.0"
