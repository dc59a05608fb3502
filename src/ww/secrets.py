"""Where passwords, keys and secrets come from (``WW_SECRETS_BACKEND``).

- ``env``: the ``WW_*`` environment variables and ``.env``, like every other setting.
- ``file``: one file per secret in ``WW_SECRETS_DIR`` (default ``/run/secrets``, where Docker
  and Kubernetes mount secrets); a secret in the environment is ignored, with a warning.
- ``chained``: the file where there is one, else the environment.
- ``auto`` (default): ``file`` where ``WW_SECRETS_DIR`` is a directory, else ``env``.

A secret's file is named after its setting: ``neo4j_password`` (Docker's lower-case
convention) or, failing that, ``WW_NEO4J_PASSWORD``. One trailing newline (``\\n`` or
``\\r\\n``), which editors and ``echo`` add, is stripped. ``WW_SECRETS_BACKEND`` and
``WW_SECRETS_DIR`` themselves come from the environment, ``.env`` or the settings' arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from ww.addresses import url_address

__all__ = [
    "DEFAULT_SECRETS_DIR",
    "SECRET_FIELDS",
    "SecretsBackend",
    "SecretsSource",
    "read_secret_files",
    "resolve_backend",
    "url_address",
]

logger = logging.getLogger(__name__)

DEFAULT_SECRETS_DIR = Path("/run/secrets")
# Every password, key and secret setting; each is a SecretStr read through the backend.
SECRET_FIELDS: tuple[str, ...] = (
    "neo4j_password",
    "qdrant_api_key",
    "api_key",
    "api_keys",
    "admin_key",
    "jwt_secret",
    # A URL, secret because it may carry Redis's password.
    "redis_url",
)


class SecretsBackend(StrEnum):
    AUTO = "auto"
    ENV = "env"
    FILE = "file"
    CHAINED = "chained"


def resolve_backend(backend: SecretsBackend, secrets_dir: Path) -> SecretsBackend:
    """The backend ``auto`` stands for here (never ``auto``)."""
    if backend is not SecretsBackend.AUTO:
        return backend
    return SecretsBackend.FILE if secrets_dir.is_dir() else SecretsBackend.ENV


def _read(path: Path) -> str:
    from ww.config import ConfigError  # here: config imports this module

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        # The path and the reason, never a byte of the content.
        raise ConfigError(f"cannot read secret file {path}: {type(exc).__name__}") from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def read_secret_files(secrets_dir: Path, fields: tuple[str, ...] = SECRET_FIELDS) -> dict[str, str]:
    """The secrets present in ``secrets_dir``, by field name."""
    found: dict[str, str] = {}
    for field in fields:
        for name in (field, f"WW_{field.upper()}"):
            path = secrets_dir / name
            if path.is_file():
                found[field] = _read(path)
                break
    return found


def _pick(name: str, *layers: Mapping[str, Any]) -> Any:
    for layer in layers:
        if layer.get(name) is not None:
            return layer[name]
    return None


class SecretsSource(PydanticBaseSettingsSource):
    """The settings' values: the arguments, then the environment and ``.env`` with the
    secrets taken from where ``WW_SECRETS_BACKEND`` says (a one-level merge suffices: no
    setting is a nested model)."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        init: PydanticBaseSettingsSource,
        env: PydanticBaseSettingsSource,
        dotenv: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._init, self._env, self._dotenv = init, env, dotenv

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ gathers the values itself

    def __call__(self) -> dict[str, Any]:
        given = self._init()
        plain = {**self._dotenv(), **self._env()}
        try:
            backend = SecretsBackend(_pick("secrets_backend", given, plain) or "auto")
        except ValueError:
            return {**plain, **given}  # the field's validation names the variable
        secrets_dir = Path(_pick("secrets_dir", given, plain) or DEFAULT_SECRETS_DIR)
        resolved = resolve_backend(backend, secrets_dir)
        if resolved is not SecretsBackend.ENV:
            files = read_secret_files(secrets_dir)
            if resolved is SecretsBackend.FILE:
                for field in SECRET_FIELDS:
                    if plain.pop(field, None) is not None and field not in files:
                        logger.warning(
                            "WW_%s is set in the environment but WW_SECRETS_BACKEND=%s reads "
                            "secrets from %s only: the variable is ignored",
                            field.upper(),
                            backend.value,
                            secrets_dir,
                        )
            plain.update(files)
        return {**plain, **given}
