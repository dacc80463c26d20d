from __future__ import annotations

import pytest

from sipline.store.crypto import SecretBox
from sipline.store.engines import open_store
from sipline.store.urls import sqlite_url
from tests.stores import fresh_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """An empty, migrated database of each supported engine (the store conformance tests)."""
    url = sqlite_url(tmp_path) if request.param == "sqlite" else fresh_postgres()
    database = open_store(url, SecretBox(b"k" * 32))
    database.migrate()
    database.url = url
    yield database
    database.close()
