"""The `smtp-auth` command. Settings are read here, once, and passed down."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from pipeline.normalize.dialects import BY_NAME
from pipeline.settings import Settings, SettingsError

if TYPE_CHECKING:
    from pipeline.normalize.parallel import Options, TextOut


@click.group()
@click.version_option(package_name="smtp-auth-insights", prog_name="smtp-auth")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="Optional env file with SMTP_AUTH_* settings.")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None) -> None:
    """Live SMTP AUTH clients report for any mail estate."""
    try:
        ctx.obj = Settings.load(config_file)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--source", type=click.Choice(sorted(BY_NAME)), default=None,
              help="Force a dialect (default: detect from the syslog program tag).")
@click.option("--year", type=int, default=None,
              help="Year of year-less syslog stamps (default: inferred from the current UTC date).")
@click.option("--rejects", type=click.File("w"), default=None,
              help="Write dead-letter records here as JSON lines (default: stderr).")
@click.option("--host", default=None,
              help="Server name for log-file lines that carry none (Exim, Exchange).")
@click.option("--keyed", is_flag=True,
              help="Each line is `server<TAB>line` (as `generate --keys` writes).")
@click.option("--jobs", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Processes for a large regular file on stdin (0: one per core; 1: one "
                   "pass). The output is the same either way.")
@click.option("--stats", "stats", is_flag=True,
              help="At the end, write per dialect to stderr: lines seen, relevant, events, "
                   "dead letters by reason, and the shapes of the relevant lines not "
                   "understood (reads in one pass).")
@click.pass_obj
def normalize(settings: Settings, source: str | None, year: int | None,
              rejects: click.utils.LazyFile | None, host: str | None, keyed: bool,
              jobs: int, stats: bool) -> None:
    """Raw log lines or JSON envelopes on stdin → canonical events as JSON lines on stdout."""
    import gc
    import os

    from pipeline.normalize import parallel

    # A batch run makes millions of short-lived, acyclic objects: young-generation
    # collections every 700 allocations cost ~5% (measured on a 1.2M-line log). Cycles are
    # still collected, just less often; forked workers inherit the setting.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    from pipeline.normalize.dialects.base import NormalizeConfig

    options = parallel.Options(NormalizeConfig.from_settings(settings),
                               settings.max_line_bytes, source, year, datetime.now(UTC),
                               host.encode() if host else None, keyed, settings.native_scan)
    err = rejects or sys.stderr
    out = sys.stdout.buffer
    size = parallel.regular_file_size(sys.stdin.fileno())
    jobs = jobs or os.cpu_count() or 1
    if stats:
        _normalize_with_stats(options, out, err)
    elif jobs > 1 and size is not None and size >= parallel.MIN_PARALLEL_BYTES:
        parallel.normalize_file(f"/proc/self/fd/{sys.stdin.fileno()}", size, options, jobs,
                                out, err)
    else:
        normalizer = options.normalizer()
        parallel.feed_all(normalizer, parallel.stream_blocks(sys.stdin.buffer), options, out,
                          err)
        parallel.render(normalizer.expire(None), out, err)
    out.flush()


def _normalize_with_stats(options: Options, out: BinaryIO, err: TextOut) -> None:
    """One pass line by line (feed_batch attributes even the lines no marker selects to
    their dialect), then the tally on stderr."""
    from pipeline.ingest.scan import split_lines
    from pipeline.normalize import parallel
    from pipeline.normalize.normalizer import Normalizer
    from pipeline.normalize.stats import Stats

    tally = Stats()
    normalizer = Normalizer(options.config, options.max_line_bytes, options.forced,
                            options.year, stats=tally)
    for base, block in parallel.stream_blocks(sys.stdin.buffer):
        items = parallel.keyed_lines(base, block) if options.keyed else [
            (base + offset, options.host, raw) for offset, raw in split_lines(block)]
        outcome = normalizer.feed_batch(items, options.received)
        parallel.render(outcome, out, err)
    parallel.render(normalizer.expire(None), out, err)
    sys.stderr.write(tally.render())


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
    from pipeline.cli.stack import run_stack

    run_stack(settings, rate, seed)


@main.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, allow_dash=True,
                                                   path_type=Path))
@click.option("--host", default=None,
              help="Server name for every line (default: each syslog line's own host).")
@click.option("--keyed", is_flag=True, help="Each line is `server<TAB>line`.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def replay(settings: Settings, files: tuple[Path, ...], host: str | None, keyed: bool,
           quiet: bool) -> None:
    """Produce log files (or stdin, `-`) to the raw topic, keyed by server, in order."""
    from contextlib import ExitStack

    from pipeline.ingest.replay import run_replay

    with ExitStack() as stack:
        sources: list[tuple[str, BinaryIO, int | None]] = []
        for path in files or (Path("-"),):
            if str(path) == "-":
                sources.append(("stdin", sys.stdin.buffer, None))
            else:
                sources.append((path.name, stack.enter_context(path.open("rb")),
                                path.stat().st_size))
        done = run_replay(settings, sources, host, keyed, show_progress=not quiet)
    cut = f"; {done.cut} longer than Kafka takes were cut (dead-lettered as too long)" if (
        done.cut) else ""
    click.echo(f"{done.lines} lines produced to {settings.topic_raw}{cut}", err=True)


@main.command()
@click.option("--rate", type=float, default=20.0, show_default=True,
              help="Submissions per second (0: as fast as possible).")
@click.option("--count", type=int, default=0, help="Stop after this many submissions (0: never).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.pass_obj
def feed(settings: Settings, rate: float, count: int, seed: int) -> None:
    """Produce a synthetic Postfix log stream to the raw topic."""
    import asyncio

    from pipeline.ingest.feed import produce_synthetic

    asyncio.run(produce_synthetic(settings, rate, count or None, seed))


@main.command()
@click.option("--source", type=click.Choice(sorted(BY_NAME)), default="postfix",
              show_default=True, help="Dialect to write.")
@click.option("--count", type=int, default=100, show_default=True, help="Submissions.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--accounts", type=int, default=40, show_default=True, help="Distinct senders.")
@click.option("--start", type=click.DateTime(["%Y-%m-%dT%H:%M:%S"]), default=None,
              help="UTC start time (default: now).")
@click.option("--truth", type=click.File("w"), default=None,
              help="Write the encoded events (ground truth) here as JSON lines.")
@click.option("--noise/--no-noise", default=True,
              help="Mix in failed logins, inbound mail and other programs' lines.")
@click.option("--rfc3164", is_flag=True, help="Year-less `Nov 28 10:00:00` syslog stamps.")
@click.option("--keys/--no-keys", default=False,
              help="Prefix each line with its server and a TAB (the Kafka key), as `replay` "
                   "and `normalize --keyed` read it.")
def generate(source: str, count: int, seed: int, accounts: int, start: datetime | None,
             truth: click.utils.LazyFile | None, noise: bool, rfc3164: bool,
             keys: bool) -> None:
    """Write a realistic synthetic MTA log to stdout, reproducible by seed."""
    from pipeline.synthetic import LogGenerator

    begin = start.replace(tzinfo=UTC) if start else datetime.now(UTC).replace(microsecond=0)
    gen = LogGenerator(source, seed, accounts, noise=noise, rfc3164=rfc3164)
    lines, expected = gen.log(count, begin)
    if keys:
        sys.stdout.writelines(f"{server}\t{line}\n" for server, line in lines)
    else:
        sys.stdout.writelines(line + "\n" for _, line in lines)
    if truth is not None:
        truth.writelines(json.dumps(row, sort_keys=True) + "\n" for row in expected)


class ReportName(click.ParamType):
    """A name from the report registry, looked up only when `report` runs (the registry
    imports the ClickHouse client, which `normalize` and the others need not load)."""

    name = "report"

    def convert(self, value: str, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        from pipeline.store.registry import BY_NAME

        if value not in BY_NAME:
            self.fail(f"{value!r} is not a report; choose from {', '.join(sorted(BY_NAME))}",
                      param, ctx)
        return value


@main.command()
@click.argument("name", type=ReportName())
@click.option("--range", "range_", default=None, metavar="24h|7d|30d|90d|START/DURATION",
              help="The window (default 7d): a preset, or an ISO-8601 interval such as "
                   "2026-11-01/P30D or 2026-11-01T06:00Z/PT12H (no offset: UTC).")
@click.option("--from", "start", default=None, hidden=True)  # the old shape: a clear error
@click.option("--to", "end", default=None, hidden=True)
@click.option("--domain", default=None, help="Show data for this sender domain.")
@click.option("--search", default=None, help="Senders containing this text.")
@click.option("--sort", default=None, help="Column to sort the details table by.")
@click.option("--order", type=click.Choice(["asc", "desc"]), default=None)
@click.option("--page", type=int, default=None)
@click.option("--page-size", type=int, default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)
@click.option("--url", default=None,
              help="The worker API (default http://WEB_HOST:WEB_PORT); with a ClickHouse "
                   "server URL configured and no --url, ClickHouse is queried directly.")
@click.pass_obj
def report(settings: Settings, name: str, range_: str | None, start: str | None,
           end: str | None, domain: str | None, search: str | None, sort: str | None,
           order: str | None, page: int | None, page_size: int | None, fmt: str,
           url: str | None) -> None:
    """Print a report: widget, flyout, volume/senders, tls, export (CSV), failures, …"""
    from pipeline.cli import report as cli_report
    from pipeline.store.registry import BY_NAME, CSV
    from pipeline.web import api

    if start or end:
        raise click.UsageError("--from/--to were replaced by --range START/DURATION "
                               "(e.g. --range 2026-11-01/P30D)")
    params = {k: str(v) for k, v in {
        "range": range_, "domain": domain, "search": search, "sort": sort, "order": order,
        "page": page, "page_size": page_size}.items() if v is not None}
    try:
        if BY_NAME[name].media == CSV:
            for chunk in cli_report.export(settings, params, url):
                sys.stdout.buffer.write(chunk)
            return
        if not BY_NAME[name].takes_query:
            params = {}
        answer = cli_report.fetch(settings, name, params, url)
    except api.BadRequest as exc:
        raise click.UsageError(str(exc)) from exc
    except cli_report.ReportError as exc:
        raise click.ClickException(str(exc)) from exc
    if fmt == "json":
        click.echo(json.dumps(answer, indent=2))
    elif fmt == "csv":
        cli_report.write_csv(name, answer)
    else:
        cli_report.print_tables(name, answer)


if __name__ == "__main__":
    main()
