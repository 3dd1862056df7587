"""Bearer tokens checked against a tokens file that holds only SHA-256 digests."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

Role = Literal["site", "regulator"]


class TokensFileError(ValueError):
    """The tokens file is missing or malformed; the message says which entry and why."""


@dataclass(frozen=True)
class Principal:
    role: Role
    sites: frozenset[str]

    def may_push(self, site_id: str) -> bool:
        return self.role == "site" and site_id in self.sites

    def may_read_sites(self, site_ids: Iterable[str]) -> bool:
        return self.role == "regulator" or not self.sites.isdisjoint(site_ids)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "cc_" + secrets.token_urlsafe(32)


def tokens_file_entry(token: str, role: Role, sites: list[str]) -> str:
    """The YAML list item to append under ``tokens:`` for this token."""
    entry = f'  - sha256: "{digest(token)}"\n    role: {role}\n'
    if role == "site":
        entry += "    sites: [" + ", ".join(f'"{s}"' for s in sites) + "]\n"
    return entry


class TokenRegistry:
    def __init__(self, by_digest: dict[str, Principal]) -> None:
        self._by_digest = by_digest

    def __len__(self) -> int:
        return len(self._by_digest)

    @property
    def sites(self) -> frozenset[str]:
        """Every site some token may push for."""
        return frozenset().union(*(p.sites for p in self._by_digest.values()))

    def authenticate(self, authorization: str | None) -> Principal | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        # Looking up a digest leaks nothing useful about the token through timing.
        return self._by_digest.get(digest(token.strip()))

    @classmethod
    def load(cls, path: Path) -> TokenRegistry:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TokensFileError(
                f"tokens file {path} does not exist; create one with "
                "`coldchain token new --role regulator` and add the printed entry"
            ) from None
        except yaml.YAMLError as exc:
            raise TokensFileError(f"tokens file {path} is not valid YAML: {exc}") from None
        entries = (document or {}).get("tokens") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise TokensFileError(f"tokens file {path} needs a top-level `tokens:` list")
        by_digest: dict[str, Principal] = {}
        for number, entry in enumerate(entries, start=1):
            by_digest.update([_parse_entry(path, number, entry)])
        return cls(by_digest)


def _parse_entry(path: Path, number: int, entry: object) -> tuple[str, Principal]:
    where = f"tokens file {path}, entry {number}"
    if not isinstance(entry, dict):
        raise TokensFileError(f"{where}: must be a mapping with sha256 and role")
    if "token" in entry:
        raise TokensFileError(f"{where}: holds a plain token; store only its sha256 digest")
    sha = str(entry.get("sha256", "")).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise TokensFileError(f"{where}: sha256 must be 64 hex digits")
    role = entry.get("role")
    if role == "regulator":
        return sha, Principal("regulator", frozenset())
    if role == "site":
        sites = entry.get("sites")
        if not isinstance(sites, list) or not sites or not all(isinstance(s, str) for s in sites):
            raise TokensFileError(f"{where}: a site token needs a non-empty `sites` list")
        return sha, Principal("site", frozenset(sites))
    raise TokensFileError(f"{where}: role must be `site` or `regulator`, not {role!r}")
