"""No input gives a server error, part 2 of fuzz_support.SHARDS: see tests/fuzz_support.py."""

from .fuzz_support import check_shard, site  # noqa: F401 - site is the fixture


def test_no_input_gives_a_server_error(site):  # noqa: F811
    check_shard(site, 2)
