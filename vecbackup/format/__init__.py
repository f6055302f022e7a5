"""On-disk encodings of vecbackup objects (see docs/FORMAT.md)."""
