"""Snowflake-style numeric ids, as strings (Coze's ids are 19-digit numbers)."""

from __future__ import annotations

import os
import threading
import time

_EPOCH_MS = 1_288_834_974_657  # Twitter's snowflake epoch, which gives 19-digit ids today
_lock = threading.Lock()
_last_ms = 0
_sequence = 0
_worker = (os.getpid() ^ int.from_bytes(os.urandom(2), "big")) & 0x3FF


def new_id() -> str:
    """A unique, time-ordered numeric id: 41 bits of milliseconds, 10 of worker, 12 of sequence."""
    global _last_ms, _sequence
    with _lock:
        now = int(time.time() * 1000)
        if now <= _last_ms:
            _sequence = (_sequence + 1) & 0xFFF
            if _sequence == 0:
                _last_ms += 1
            now = _last_ms
        else:
            _sequence = 0
            _last_ms = now
        return str(((now - _EPOCH_MS) << 22) | (_worker << 12) | _sequence)
