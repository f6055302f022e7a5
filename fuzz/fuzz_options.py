"""Option values users type (times.py, format/shard.py, cli/options.py): durations (--keep-within, --min-age,
--max-age, every = in a schedule), --shard I/N, --run, --index-params / --field-params / --collection-params.
Any text gives a UsageError with a one-line message, or a value its consumers can use (a duration the clock can
be moved by). First byte: which option (low bits: fuzz._common.text decoding)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fuzz._common import Bug, allow, as_text, text
from vecbackup.cli.options import parse_collection_params, parse_field_params, parse_index_params
from vecbackup.errors import UsageError
from vecbackup.format.shard import MAX_SHARDS, Shard, check_run
from vecbackup.retention import Policy, format_duration
from vecbackup.times import parse_duration

MAX_LEN = 256


def duration(s: str) -> None:
    seconds = allow((UsageError,), parse_duration, s)
    if seconds is None:
        return
    now = datetime.now(UTC)
    if not 0 <= seconds < float("inf") or not now - timedelta(seconds=seconds) <= now <= now + timedelta(
            seconds=seconds):
        raise Bug(f"duration {s!r} is {seconds} s")
    format_duration(seconds)
    Policy(keep_within=seconds).describe()


def shard(s: str) -> None:
    got = allow((UsageError,), Shard.parse, s)
    if got is not None and not 0 <= got.index < got.count <= MAX_SHARDS:
        raise Bug(f"--shard {s!r} gave {got}")


def run(s: str) -> None:
    got = allow((UsageError,), check_run, s)
    if got is not None and ("/" in got or got in (".", "..")):
        raise Bug(f"--run {s!r} accepted")


def params(s: str) -> None:
    for parse in (parse_index_params, parse_field_params, parse_collection_params):
        allow((UsageError,), parse, s.split("\n"))


OPTIONS = (duration, shard, run, params)


def seeds() -> list[bytes]:
    values = {duration: ["30m", "7d", "1.5h", "90", " 2w ", "1" * 400, "99999999999w"],
              shard: ["0/4", " 3 / 4 ", "1" * 50 + "/2"], run: ["run-1", "a..", ".x"],
              params: ['v:M=16,efConstruction=200', 'v:{"M": 16}', "consistency_level=Bounded\nx=1.5"]}
    return [bytes([i << 2 | b[0]]) + b[1:] for i, option in enumerate(OPTIONS) for v in values[option]
            for b in [as_text(v)]]


def one_input(data: bytes) -> None:
    if not data:
        return
    OPTIONS[(data[0] >> 2) % len(OPTIONS)](text(bytes([data[0] & 3]) + data[1:]))


if __name__ == "__main__":
    from fuzz._harness import main_for

    main_for("options")
