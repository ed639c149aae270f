from __future__ import annotations

import os
import re
import threading

from tether.security import ids


def test_bytes_are_never_handed_out_twice_across_block_refills() -> None:
    # Several 4 KiB blocks' worth, in sizes that do not divide the block.
    chunks = [ids.random_bytes(12) for _ in range(2000)]
    assert all(len(chunk) == 12 for chunk in chunks)
    assert len(set(chunks)) == len(chunks)
    assert len(ids.random_bytes(10_000)) == 10_000  # more than a block at once


def test_hex_and_urlsafe_have_the_secrets_module_shapes() -> None:
    assert re.fullmatch(r"[0-9a-f]{24}", ids.random_hex(12))
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", ids.random_urlsafe(16))


def test_a_forked_child_does_not_reuse_its_parents_unread_bytes() -> None:
    ids.random_bytes(16)  # the parent now holds a block with unread bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next bytes and leave at once
        os.write(write, ids.random_bytes(16))
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 16)
    os.close(read)
    assert len(child) == 16
    assert child != ids.random_bytes(16)


def test_threads_each_get_their_own_bytes() -> None:
    seen: list[bytes] = []

    def take() -> None:
        mine = [ids.random_bytes(8) for _ in range(3000)]
        seen.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == len(seen) == 24_000
