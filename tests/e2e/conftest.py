import pytest

from evo.config.settings import settings
from tests.hosts import available


@pytest.fixture
def can_make_hosts():
    """Skip where network namespaces cannot be made, unless EVO_REQUIRE_NAMESPACES says they must (CI)."""
    reason = available()
    if reason:
        if settings().require_namespaces:
            pytest.fail(f"EVO_REQUIRE_NAMESPACES is set but {reason}")
        pytest.skip(reason)
