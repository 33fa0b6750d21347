"""Child process of ``test_wal_crash``: writes to a log until it is killed.

Three producer threads append groups of self-verifying records and wait for them to be durable;
after ``wait_durable`` returns, the thread writes the acknowledged sequence number to stdout
(one ``os.write`` per line: atomic on a pipe). Usage: ``wal_crash_writer.py DIRECTORY SEED``.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import threading

from rollbook.sequencer.wal import WriteAheadLog

SEGMENT_BYTES_TARGET = 64 * 1024  # small, so that crashes also land around rotations
PRODUCERS = 3
GROUP_RECORDS_MAX = 8  # small groups: many commits per run, a log the parent reads fast


def record(producer: int, counter: int) -> bytes:
    """``body | sha256(body)[:8]``: a record the parent can check without knowing its order."""
    body = b"%d:%d:" % (producer, counter) + bytes(counter % 97)
    return body + hashlib.sha256(body).digest()[:8]


def produce(log: WriteAheadLog, producer: int, seed: int) -> None:
    rng = random.Random(seed * 31 + producer)
    counter = 0
    while True:
        count = rng.randint(1, GROUP_RECORDS_MAX)
        sequences = log.append([record(producer, counter + i) for i in range(count)])
        counter += count
        log.wait_durable(sequences[-1])
        os.write(1, b"%d\n" % sequences[-1])


def main() -> None:
    directory, seed = sys.argv[1], int(sys.argv[2])
    log = WriteAheadLog(directory, segment_bytes_target=SEGMENT_BYTES_TARGET)
    os.write(1, b"ready %d\n" % log.last_sequence)
    threads = [threading.Thread(target=produce, args=(log, i, seed), daemon=True)
               for i in range(PRODUCERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
