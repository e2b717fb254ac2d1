"""Our key → partition is Kafka's default partitioner's: the normalize stage batches events
per partition itself, and a sender's events must land where any producer would put them."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from pipeline.ingest.kafka import key_partition


@given(st.binary(max_size=320), st.integers(1, 64))
def test_the_default_partitioners_choice(key: bytes, partitions: int) -> None:
    every = list(range(partitions))
    assert key_partition(key, partitions) == DefaultPartitioner()(key, every, every)

