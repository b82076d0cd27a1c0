"""What the caller hears is German and lives only in booking/phrases.py, so it can be
read, reviewed and changed in one place. Other modules may hold German only as
input vocabulary (words the caller says) or data."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GERMAN = re.compile(r"[äöüÄÖÜß]|\bUhr\b|\b(Sie|Ihnen|Ihre|bitte|Bitte|leider|Termin)\b")
# Files allowed to hold German strings, and why.
ALLOWED = {
    "booking/phrases.py": "every sentence the caller hears",
    "booking/spoken_time.py": "words the caller says (heute, übermorgen, nächsten) to parse",
    "booking/services_lookup.py": "words the caller says for 'any staff member'",
    "core/customers.py": "umlauts spelled out when comparing names",
    "core/seed.py": "German demo data (service names, customers)",
    "core/privacy.py": "the stored placeholder name of an erased customer (data, not speech)",
}


def _strings(tree: ast.AST) -> list[str]:
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                docstrings.add(doc)
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value not in docstrings]


def test_no_german_text_outside_phrases():
    offenders = []
    for folder in ("booking", "core"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name in ALLOWED:
                continue
            for text in _strings(ast.parse(path.read_text(encoding="utf-8"))):
                if GERMAN.search(text):
                    offenders.append(f"{name}: {text[:60]!r}")
    assert offenders == []
