from __future__ import annotations

from pathlib import Path

import pytest

from connectors.auth import TokenRegistry, TokensFileError, digest, new_token, tokens_file_entry


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    return path


def test_entries_from_token_new_load_and_authenticate(tmp_path: Path) -> None:
    site, regulator = new_token(), new_token()
    path = write(
        tmp_path,
        "tokens:\n"
        + tokens_file_entry(site, "site", ["CS-001", "CS-002"])
        + tokens_file_entry(regulator, "regulator", []),
    )
    registry = TokenRegistry.load(path)
    who = registry.authenticate(f"Bearer {site}")
    assert who is not None and who.may_push("CS-001") and not who.may_push("CS-003")
    assert who.may_read_sites({"CS-002", "X"}) and not who.may_read_sites({"X"})
    boss = registry.authenticate(f"bearer {regulator}")
    assert boss is not None and boss.role == "regulator" and not boss.may_push("CS-001")
    assert boss.may_read_sites({"anything"})
    assert registry.authenticate(f"Bearer {digest(site)}") is None
    assert registry.authenticate(None) is None
    assert registry.authenticate(f"Basic {site}") is None
    assert site not in path.read_text()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("tokens: 3", "top-level `tokens:` list"),
        ("tokens:\n  - token: abc\n    role: regulator", "plain token"),
        ("tokens:\n  - sha256: abc\n    role: regulator", "64 hex digits"),
        (f"tokens:\n  - sha256: {'a' * 64}\n    role: boss", "role must be"),
        (f"tokens:\n  - sha256: {'a' * 64}\n    role: site", "non-empty `sites`"),
        ("tokens: [", "not valid YAML"),
    ],
)
def test_bad_tokens_files_say_what_is_wrong(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(TokensFileError, match=says.replace("`", ".")):
        TokenRegistry.load(write(tmp_path, text))


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(TokensFileError, match="coldchain token new"):
        TokenRegistry.load(tmp_path / "nope.yaml")


def test_the_registry_knows_every_site_a_token_may_push_for(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "tokens:\n"
        + tokens_file_entry(new_token(), "site", ["PORT", "CS-001"])
        + tokens_file_entry(new_token(), "site", ["CS-001", "MKT-01"])
        + tokens_file_entry(new_token(), "regulator", []),
    )
    assert TokenRegistry.load(path).sites == {"PORT", "CS-001", "MKT-01"}
