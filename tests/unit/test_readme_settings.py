"""The README's Configuration section and the code agree, both ways.

Every ``WW_*`` setting has a row in the section's tables and every row names a setting or one
of the clients' own variables (``CLIENT_ENV_NAMES``, which are never settings); every flag is
named there, and the flags it says do nothing are exactly the ones no code reads.
"""

from __future__ import annotations

import re
from pathlib import Path

from ww.config import CLIENT_ENV_NAMES, Settings
from ww.control.flags import NOT_BUILT, Flags

ROOT = Path(__file__).resolve().parents[2]
ROW_NAME = re.compile(r"`(WW_[A-Z0-9_]+(?:<NAME>)?)`")
FLAG_PLACEHOLDER = "WW_FLAG_<NAME>"


def configuration_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Configuration\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def table_names(section: str) -> set[str]:
    """Names in the first cell of each table row; a row may name two (`A` / `B`)."""
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `WW_"):
            names.update(ROW_NAME.findall(line.split("|")[1]))
    return names


def test_table_parser_reads_rows_with_two_names() -> None:
    section = "| `WW_A` / `WW_B` | `1` / `2` | x `WW_C` |\n| `WW_FLAG_<NAME>` | - | - |\n"
    assert table_names(section) == {"WW_A", "WW_B", FLAG_PLACEHOLDER}


def test_every_setting_has_a_row_and_every_row_is_a_setting() -> None:
    rows = table_names(configuration_section())
    settings = {f"WW_{name.upper()}" for name in Settings.model_fields}
    assert sorted(settings - rows) == [], "settings missing from the README's tables"
    clients = set(CLIENT_ENV_NAMES)
    assert sorted(rows - settings - clients - {FLAG_PLACEHOLDER}) == [], (
        "README rows that are no setting"
    )
    assert FLAG_PLACEHOLDER in rows


def test_client_variables_have_rows_and_are_no_setting() -> None:
    """A client's own variable is documented, and none shadows a setting: a setting named
    like one would be read by the server too, with another meaning."""
    rows = table_names(configuration_section())
    settings = {f"WW_{name.upper()}" for name in Settings.model_fields}
    assert sorted(set(CLIENT_ENV_NAMES) - rows) == []
    assert sorted(set(CLIENT_ENV_NAMES) & settings) == []


def test_every_flag_is_named_in_the_section() -> None:
    section = configuration_section()
    missing = [name for name in Flags.model_fields if f"`{name}`" not in section]
    assert missing == []


def _read_in_code(flag: str) -> bool:
    """Whether any module other than flags.py reads the flag as an attribute."""
    pattern = re.compile(rf"\.{flag}\b")
    for path in (ROOT / "src" / "ww").rglob("*.py"):
        if path.name != "flags.py" and pattern.search(path.read_text()):
            return True
    return False


def test_flags_said_to_do_nothing_are_exactly_the_unread_ones() -> None:
    section = " ".join(configuration_section().split())
    match = re.search(r"((?:`[a-z_]+`,? (?:and )?)+)does? nothing yet", section)
    if NOT_BUILT:
        assert match is not None, "the README names the flags that do nothing yet"
    said = set(re.findall(r"`([a-z_]+)`", match.group(1))) if match else set()
    assert said == set(NOT_BUILT)
    unread = {name for name in Flags.model_fields if not _read_in_code(name)}
    assert unread == set(NOT_BUILT)
