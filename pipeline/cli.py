"""The `smtp-auth` command. Settings are read here, once, and passed down."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from pipeline.dialects import BY_NAME
from pipeline.settings import Settings


@click.group()
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="Optional env file with SMTP_AUTH_* settings.")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None) -> None:
    """Live SMTP AUTH clients report for any mail estate."""
    ctx.obj = Settings.load(config_file)


@main.command()
@click.option("--source", type=click.Choice(sorted(BY_NAME)), default=None,
              help="Force a dialect (default: detect from the syslog program tag).")
@click.option("--year", type=int, default=None,
              help="Year of year-less syslog stamps (default: inferred from the current UTC date).")
@click.option("--rejects", type=click.File("w"), default=None,
              help="Write dead-letter records here as JSON lines (default: stderr).")
@click.pass_obj
def normalize(settings: Settings, source: str | None, year: int | None,
              rejects: click.utils.LazyFile | None) -> None:
    """Raw log lines or JSON envelopes on stdin → canonical events as JSON lines on stdout."""
    from pipeline.normalize import Normalizer, normalize_lines
    from pipeline.worker import normalize_config

    normalizer = Normalizer(normalize_config(settings), settings.max_line_bytes, source, year)
    out = sys.stdout
    err = rejects or sys.stderr
    lines = (line.rstrip(b"\r\n") for line in sys.stdin.buffer)
    for outcome in normalize_lines(lines, normalizer, datetime.now(UTC)):
        for event in outcome.events:
            out.write(event.model_dump_json(exclude_none=False))
            out.write("\n")
        for rejection in outcome.rejections:
            err.write(rejection.model_dump_json() + "\n")
    out.flush()


@main.command()
@click.pass_obj
def worker(settings: Settings) -> None:
    """Run one pipeline worker (normalize, sink, API) against the configured Kafka."""
    from pipeline.worker import run_worker

    run_worker(settings)


@main.command()
@click.option("--rate", type=float, default=20.0, show_default=True,
              help="Synthetic submissions per second.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.pass_obj
def run(settings: Settings, rate: float, seed: int) -> None:
    """The whole local stack: Kafka broker, embedded ClickHouse, worker, synthetic feed, API."""
    from pipeline.stack import run_stack

    run_stack(settings, rate, seed)


@main.command()
@click.option("--rate", type=float, default=20.0, show_default=True,
              help="Submissions per second (0: as fast as possible).")
@click.option("--count", type=int, default=0, help="Stop after this many submissions (0: never).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.pass_obj
def feed(settings: Settings, rate: float, count: int, seed: int) -> None:
    """Produce a synthetic Postfix log stream to the raw topic."""
    import asyncio

    from pipeline.feed import produce_synthetic

    asyncio.run(produce_synthetic(settings, rate, count or None, seed))


@main.command()
@click.option("--count", type=int, default=100, show_default=True, help="Submissions.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--start", type=click.DateTime(["%Y-%m-%dT%H:%M:%S"]), default=None,
              help="UTC start time (default: now minus one hour).")
@click.option("--truth", type=click.File("w"), default=None,
              help="Write the encoded events (ground truth) here as JSON lines.")
def generate(count: int, seed: int, start: datetime | None,
             truth: click.utils.LazyFile | None) -> None:
    """Write a realistic synthetic Postfix log to stdout (RFC 3339 stamps)."""
    from pipeline.generate import PostfixGenerator

    begin = start.replace(tzinfo=UTC) if start else datetime.now(UTC).replace(microsecond=0)
    lines, expected = PostfixGenerator(seed).log(count, begin)
    sys.stdout.writelines(line + "\n" for line in lines)
    if truth is not None:
        truth.writelines(json.dumps(row, sort_keys=True) + "\n" for row in expected)
if __name__ == "__main__":
    main()
