"""Fuzz targets for every parser of hostile input (``make fuzz``; how to run and reproduce: fuzz/run.py).

Each ``fuzz_<target>.py`` holds one target: ``one_input(data: bytes)`` raises on a bug (an exception other than the
parser's own error class, a message on several lines, a path outside the store, an allocation beyond what the
input justifies) and ``seeds()`` builds valid inputs to start from. ``python -m fuzz.run`` runs every target under
atheris (coverage-guided libFuzzer) or, without it, a hypothesis-driven search over the same targets.
"""
