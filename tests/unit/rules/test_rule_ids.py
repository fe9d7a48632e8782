"""docs/rules.md lists every rule id; each is named in the code that implements it and in a test.

The check reads the project's own docs/rules.md, so it runs in a fresh clone.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
RULE_ID = re.compile(r"\b(SYNC|OWN|CON|ACC|DEAL|ROLL)-\d+\b")


def documented_ids() -> set[str]:
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^\| ((?:SYNC|OWN|CON|ACC|DEAL|ROLL)-\d+) \|", text, re.M)}


def named_in(folder: Path) -> set[str]:
    return {m.group(0) for p in folder.rglob("*.py") for m in RULE_ID.finditer(p.read_text(encoding="utf-8"))}


def test_docs_list_the_37_rule_ids() -> None:
    ids = documented_ids()
    assert len(ids) == 37
    assert {"SYNC-5", "ACC-8", "DEAL-9", "ROLL-7"} <= ids


def test_every_documented_rule_is_named_in_code_and_in_tests() -> None:
    ids = documented_ids()
    assert ids - named_in(ROOT / "include" / "crm_sync") == set()
    assert ids - named_in(ROOT / "tests") == set()
    assert named_in(ROOT / "include" / "crm_sync") - ids == set(), "code names an id docs/rules.md lacks"
