"""strongSwan's settings syntax as libstrongswan's lexer and parser read it (``ikesim.scenario.swanctl``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ikesim.errors import ConfigError
from ikesim.scenario.swanctl import parse_settings, parse_settings_text, resolve


def _flat(section, prefix: str = "") -> dict[str, str | None]:
    out = {f"{prefix}{k}": s.value for k, s in section.settings.items()}
    for name, sub in section.sections.items():
        out.update(_flat(sub, f"{prefix}{name}."))
    return out


def test_sections_settings_values_and_comments() -> None:
    """Values run to the end of the line, '#' or '}', words joined by one space; strings keep spaces and escapes."""
    root = parse_settings_text(
        'a {  # comment\n'
        '  x = 1   2\t3  # trailing\n'
        '  y =\n'
        '  s = "two  spaces\\n\\t\\"q\\"" more\n'
        '  b { k = v }\n'
        '  long = "one \\\n'
        'two"\n'
        '}\n', "t.conf")
    assert _flat(root) == {"a.x": "1 2 3", "a.y": None, "a.s": 'two  spaces\n\t"q" more', "a.b.k": "v",
                           "a.long": "one two"}
    assert (root.sections["a"].settings["x"].line, root.sections["a"].sections["b"].line) == (2, 5)


def test_sections_merge_and_the_last_setting_wins() -> None:
    """A section given twice is one; a key given twice keeps its last value (settings_types.c)."""
    root = parse_settings_text("a { x = 1\n y = 2 }\na { x = 3 }\n", "t.conf")
    assert _flat(root) == {"a.x": "3", "a.y": "2"}
    assert root.sections["a"].settings["x"].line == 3


def test_include_is_relative_sorted_and_may_match_nothing(tmp_path: Path) -> None:
    """``include`` globs relative to the including file, in sorted order, into the section it is in."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.conf").write_text("k = from-b\nz = 2\n")
    (tmp_path / "d" / "a.conf").write_text("k = from-a\ny = 1\n")
    (tmp_path / "main.conf").write_text("s {\n include d/*.conf\n include none/*.conf\n}\ninclude = a setting\n")
    root = parse_settings(tmp_path / "main.conf")
    assert _flat(root) == {"include": "a setting", "s.k": "from-b", "s.y": "1", "s.z": "2"}
    assert root.sections["s"].settings["y"].file == str(tmp_path / "d" / "a.conf")


def test_references_inherit_settings_and_subsections() -> None:
    """``name : a.b, c { }`` inherits from sections named from the top; its own keys win."""
    root = parse_settings_text(
        "t { base { x = 1\n y = 1\n sub { p = 1 } }\n }\n"
        "u { q = 9 }\n"
        "c { conn : t.base, u { y = 2\n sub { r = 2 } } }\n", "t.conf")
    conn = resolve(root.sections["c"].sections["conn"], root)
    assert _flat(conn) == {"x": "1", "y": "2", "q": "9", "sub.p": "1", "sub.r": "2"}


@pytest.mark.parametrize(("text", "message"), [
    ("a {\n x = 1\n", "t.conf:3: section 'a' (line 1) is not closed with '}'"),
    ("a = 1\n}\n", "t.conf:2: '}' closes no section"),
    ("a {\n x 1\n}\n", "t.conf:2: 'x': expected '=' (a setting) or '{' (a section) after the name"),
    ('a = "open\n', "t.conf:1: unterminated string"),
    ('"a" = 1\n', "t.conf:1: unexpected string: quote values only, after '='"),
    ("a : { }\n", "t.conf:1: section 'a': expected the name of a section it inherits from"),
])
def test_syntax_errors_name_file_and_line(text: str, message: str) -> None:
    """What libstrongswan's parser refuses is a ConfigError naming the file and line."""
    with pytest.raises(ConfigError) as exc:
        parse_settings_text(text, "t.conf")
    assert str(exc.value) == message


def test_a_missing_reference_names_its_line() -> None:
    """A section inheriting from one that does not exist is an error at the reference."""
    root = parse_settings_text("c {\n conn : nowhere { }\n}\n", "t.conf")
    with pytest.raises(ConfigError, match=r"^t.conf:2: section 'conn' inherits from 'nowhere', which does not exist$"):
        resolve(root.sections["c"].sections["conn"], root)
