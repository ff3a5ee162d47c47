import sys

import pytest

from titans_ts.training import tune_cpu_allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_allocator_tuning_is_accepted_on_linux():
    assert tune_cpu_allocator() is True
