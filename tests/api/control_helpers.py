"""Shared by the control plane's API tests (not a test module itself): an app with auth on,
an admin key whose id the audit shows, and a user key."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.api.helpers import running_client
from tests.conftest import ManualClock
from ww.embedding import Embedder

ADMIN = {"X-API-Key": "ww_ops-admin-key-for-control-0001"}
USER = {"X-API-Key": "ww_user-key-for-control-tests-02"}
ADMIN_ID = "ops-admin"
KEYS = json.dumps(
    [
        {"id": ADMIN_ID, "key": ADMIN["X-API-Key"], "role": "admin"},
        {"id": "app-user", "key": USER["X-API-Key"]},
    ]
)


@contextlib.contextmanager
def control_client(data_dir: Path, embedder: Embedder, **settings: Any) -> Iterator[TestClient]:
    with running_client(data_dir, embedder, ManualClock(), api_keys=KEYS, **settings) as c:
        yield c


def patch_flag(client: TestClient, name: str, enabled: bool) -> Any:
    r = client.patch(f"/api/v1/control/flags/{name}", json={"enabled": enabled}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()
