from __future__ import annotations

import pytest

from sipline.store.crypto import SecretBox
from sipline.store.database import Database, sqlite_url


@pytest.fixture(params=["sqlite"])
def db(request, tmp_path):
    """An empty, migrated database of each supported engine."""
    database = Database(sqlite_url(tmp_path), SecretBox(b"k" * 32))
    database.migrate()
    yield database
    database.close()
