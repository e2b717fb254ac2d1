"""Writes to a faust table, batched, each to the partition we name.

faust's own `table[key] = value` sends one changelog record per assignment through its
producer buffer, to the partition of the stream's *current event*: wrong for a batch that
spans partitions, impossible from a timer, and one record per update (the buffer then logs
"producer buffer full" whenever more than a hundred wait). Here an update changes the
table's store at once (reads see it) and marks the key; `flush()` sends one record per
marked key, latest value, to its partition, straight to the producer. faust flushes the
producer before it commits any offset, so the records are safe before the inputs that made
them are committed; recovery reads the same changelog topic as before.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson
from faust.stores.memory import Store as MemoryStore


class TableWriter:
    def __init__(self, table: Any) -> None:
        self.table = table
        self._dirty: dict[int, dict[str, Any]] = {}  # partition → key → newest value
        self._dict: MutableMapping[str, Any] | None = None

    @property
    def data(self) -> Any:
        """The table's entries. For faust's memory store, its plain dict: the store's own
        mapping methods (mode's FastUserDict through Mapping.get) cost more per event than
        counting the event does. The store keeps that one dict for its lifetime."""
        if self._dict is None:
            store = self.table.data
            if not isinstance(store, MemoryStore):
                return store
            self._dict = store.data
        return self._dict

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(list(self.data.items()))

    def set(self, key: str, value: Any, partition: int) -> None:
        self.data[key] = value
        dirty = self._dirty.get(partition)
        if dirty is None:
            dirty = self._dirty[partition] = {}
        dirty[key] = value

    def dirty(self) -> int:
        return sum(len(keys) for keys in self._dirty.values())

    async def flush(self) -> int:
        """One changelog record per key changed since the last flush; returns how many."""
        dirty, self._dirty = self._dirty, {}
        table = self.table
        topic = table.changelog_topic
        name = topic.get_topic_name()
        send = table.app.producer.send
        key_codec, value_codec = table.key_serializer, table.value_serializer
        fast = key_codec == value_codec == "json"  # what the tables here use
        sent = 0
        for partition, keys in dirty.items():
            for key, value in keys.items():
                # JSON as faust's own table writes are (recovery decodes them alike; orjson
                # is several times faster than faust's encoder on these nested dicts), and
                # straight to faust's producer: its pre-commit flush covers them.
                if fast:
                    k, v = orjson.dumps(key), orjson.dumps(value)
                else:
                    k, _ = topic.prepare_key(key, key_codec)
                    v, _ = topic.prepare_value(value, value_codec)
                await send(name, k, v, partition, None, None)
                sent += 1
        return sent


class PartitionStore:
    """The mapping a pure engine writes (pipeline/live/decide.py's AlertEngine): the
    table's entries, with writes marked for one partition."""

    def __init__(self, writer: TableWriter, partition: int) -> None:
        self.writer = writer
        self.partition = partition

    def get(self, key: str, default: Any = None) -> Any:
        return self.writer.get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self.writer.set(key, value, self.partition)
