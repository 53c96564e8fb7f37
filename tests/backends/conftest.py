"""The backend tests' ort-cpu measurements: quick, into a kernel cache of the test session's own
(never the user's ``~/.cache/symbiote/ortcpu``)."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _ortcpu_test_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SYMBIOTE_ORTCPU_CACHE", str(tmp_path_factory.mktemp("ortcpu-cache")))
    mp.setenv("SYMBIOTE_ORTCPU_QUICK", "1")
    yield
    mp.undo()
