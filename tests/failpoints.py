"""Run the real worker with one failpoint armed: it SIGKILLs itself half-way through a
chosen step, so a test can restart it and check that nothing was lost or counted twice.

    SMTP_AUTH_TEST_FAILPOINT=count-flush      python -m tests.failpoints
    SMTP_AUTH_TEST_FAILPOINT=normalize-batch  python -m tests.failpoints
    SMTP_AUTH_TEST_FAILPOINT=count-feed       python -m tests.failpoints

count-flush      the live counters' changelog flush of a batch of at least MIN records:
                 half of them are handed to the producer, then the process dies.
normalize-batch  a normalized fetch sent as two produce batches or more: half of them
                 are acknowledged by the broker, then the worker and its normalize
                 processes die (nothing committed).
count-feed       a fetch of the events topic forwarded as two frames or more: half of them
                 are acknowledged by the broker, then the process dies (nothing committed).

Only the test suite uses this; the worker itself has no test hooks.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
from typing import Any

MIN = 20


def _die(point: str) -> None:
    print(f"failpoint {point} reached: SIGKILL", flush=True)
    if multiprocessing.parent_process() is not None:
        # A normalize child: the whole worker dies at this point, as on a power cut.
        os.kill(os.getppid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    if point == "count-flush":
        from pipeline.live.changelog import TableWriter

        flush = TableWriter.flush

        async def dying_flush(self: TableWriter) -> int:
            if self.table.name != "sender-counts" or self.dirty() < MIN:
                return await flush(self)
            send = self.table.changelog_topic.send
            records = [(p, k, v) for p, keys in self._dirty.items() for k, v in keys.items()]
            for partition, key, value in records[: len(records) // 2]:
                await send(key=key, value=value, partition=partition, force=True)
            await self.table.app.producer.flush()  # half of the flush reached the broker
            _die(point)
            return 0

        TableWriter.flush = dying_flush  # type: ignore[method-assign]
    elif point == "normalize-batch":
        from pipeline.normalize.agent import NormalizeAgent

        settle = NormalizeAgent._settle

        async def dying_settle(self: NormalizeAgent, sent: list[Any], due: Any) -> None:
            if len(sent) < 2:  # events go a batch per partition: two batches or more
                await settle(self, sent, due)
                return
            await asyncio.gather(*sent[: len(sent) // 2])  # half are on the topic
            _die(point)

        NormalizeAgent._settle = dying_settle  # type: ignore[method-assign]
    elif point == "count-feed":
        from pipeline.live.feed import CountFeed

        feed_settle = CountFeed._settle

        async def dying_feed_settle(consumer: Any, sent: list[Any], due: Any) -> None:
            if len(sent) < 2:
                await feed_settle(consumer, sent, due)
                return
            await asyncio.gather(*sent[: len(sent) // 2])  # half the frames are on the topic
            _die(point)

        CountFeed._settle = staticmethod(dying_feed_settle)  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown failpoint {point!r}")


if __name__ == "__mp_main__":
    # A normalize child of the worker below (multiprocessing's spawn imports the parent's
    # main module under this name): the failpoint is armed there too.
    arm(os.environ["SMTP_AUTH_TEST_FAILPOINT"])

if __name__ == "__main__":
    arm(os.environ["SMTP_AUTH_TEST_FAILPOINT"])
    from pipeline.cli.main import main

    sys.argv = ["smtp-auth", "worker"]
    main()
