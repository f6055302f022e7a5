"""Benchmarks: vecbackup against the JSON-per-row + gzip baseline (``make bench`` runs ``benchmarks.run``)."""
