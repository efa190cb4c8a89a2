"""License gate for ingested clips: an SPDX-style allowlist plus user-declared licenses.

Every source in a manifest must name its license by SPDX-style id (``CC-BY-4.0``, ``CC0-1.0``,
...). The gate normalises common spellings (``cc by 4.0``, ``CC-BY 3.0``, ``cc0``) to the SPDX id,
then admits the source only if the id is in the allowlist or declared by the user in the config
(``licenses.declared``, e.g. an in-house ``LicenseRef-acme-footage`` agreement). Three distinct
rejections, each with its own reason string:

* ``missing license``: the manifest row has no license at all;
* ``unknown license``: an id that is neither a known SPDX id nor declared;
* ``license not allowed``: a known id that the allowlist excludes (e.g. ``CC-BY-NC-4.0`` when
  non-commercial footage is not wanted).

Example:
    >>> cfg = LicenseConfig()
    >>> check_license("cc by 3.0", cfg).license_id
    'CC-BY-3.0'
    >>> check_license("", cfg).reason
    'missing license'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# SPDX ids of licenses commonly attached to footage. Known, but not all allowed by default.
KNOWN_LICENSES: dict[str, str] = {
    "CC0-1.0": "Creative Commons Zero v1.0 Universal (public-domain dedication)",
    "PDDL-1.0": "Open Data Commons Public Domain Dedication & License 1.0",
    "CC-PDM-1.0": "Creative Commons Public Domain Mark 1.0",
    "CC-BY-2.0": "Creative Commons Attribution 2.0",
    "CC-BY-2.5": "Creative Commons Attribution 2.5",
    "CC-BY-3.0": "Creative Commons Attribution 3.0",
    "CC-BY-4.0": "Creative Commons Attribution 4.0",
    "CC-BY-SA-2.0": "Creative Commons Attribution Share Alike 2.0",
    "CC-BY-SA-3.0": "Creative Commons Attribution Share Alike 3.0",
    "CC-BY-SA-4.0": "Creative Commons Attribution Share Alike 4.0",
    "CC-BY-NC-3.0": "Creative Commons Attribution Non Commercial 3.0",
    "CC-BY-NC-4.0": "Creative Commons Attribution Non Commercial 4.0",
    "CC-BY-NC-SA-4.0": "Creative Commons Attribution Non Commercial Share Alike 4.0",
    "CC-BY-ND-4.0": "Creative Commons Attribution No Derivatives 4.0",
    "CC-BY-NC-ND-4.0": "Creative Commons Attribution Non Commercial No Derivatives 4.0",
}

DEFAULT_ALLOWED: tuple[str, ...] = (
    "CC0-1.0", "PDDL-1.0", "CC-PDM-1.0", "CC-BY-2.0", "CC-BY-2.5", "CC-BY-3.0", "CC-BY-4.0",
    "CC-BY-SA-3.0", "CC-BY-SA-4.0",
)

MISSING = "missing license"
UNKNOWN = "unknown license"
NOT_ALLOWED = "license not allowed"

_ALIASES = {"CC0": "CC0-1.0", "PUBLIC-DOMAIN": "CC-PDM-1.0", "PD": "CC-PDM-1.0", "PDM": "CC-PDM-1.0"}


@dataclass(frozen=True)
class LicenseConfig:
    """Which licenses admit a source.

    Attributes:
        allowed: SPDX ids admitted (known ids; see :data:`KNOWN_LICENSES`).
        declared: extra ids the user vouches for (e.g. ``LicenseRef-acme-2024``), always admitted.
        require_attribution_for_by: reject ``CC-BY*`` sources whose row has neither author nor
            attribution (the license obliges us to credit someone).
        hash_refused: fetch and hash a source refused for its license (not allowed or unknown), so
            the same bytes under another URL and an admitted license are refused as a
            ``license conflict`` (ingest); costs the download of refused sources.
    """

    allowed: tuple[str, ...] = DEFAULT_ALLOWED
    declared: tuple[str, ...] = ()
    require_attribution_for_by: bool = True
    hash_refused: bool = True


@dataclass(frozen=True)
class LicenseDecision:
    """Outcome of the gate: ``ok``, the normalised id, and the rejection ``reason``/``detail``."""

    ok: bool
    license_id: str
    reason: str = ""
    detail: str = ""


def normalise_license(text: str | None) -> str:
    """Canonical SPDX-style spelling of ``text`` (``"cc by 4.0"`` -> ``"CC-BY-4.0"``).

    Unknown ids come back upper-cased with spaces/underscores as dashes, except ``LicenseRef-*``
    ids whose suffix keeps its case.
    """
    raw = (text or "").strip()
    if not raw:
        return ""
    if raw.lower().startswith("licenseref-"):
        return "LicenseRef-" + raw[len("licenseref-"):]
    s = re.sub(r"[\s_]+", "-", raw.upper())
    s = re.sub(r"-+", "-", s)
    s = _ALIASES.get(s, s)
    if s not in KNOWN_LICENSES:
        m = re.fullmatch(r"(CC-BY(?:-NC)?(?:-SA|-ND)?)-?(\d(?:\.\d)?)", s)
        if m:
            ver = m.group(2) if "." in m.group(2) else f"{m.group(2)}.0"
            s = f"{m.group(1)}-{ver}"
    return s


def check_license(license_id: str | None, cfg: LicenseConfig, *, author: str = "",
                  attribution: str = "") -> LicenseDecision:
    """Admit or reject one source by its license id; the reason names what is wrong."""
    lid = normalise_license(license_id)
    if not lid:
        return LicenseDecision(False, "", MISSING, "the source row has no license id")
    declared = {normalise_license(d) for d in cfg.declared}
    allowed = {normalise_license(a) for a in cfg.allowed}
    if lid in declared:
        return LicenseDecision(True, lid)
    if lid not in KNOWN_LICENSES:
        return LicenseDecision(False, lid, UNKNOWN,
                               f"{license_id!r} is not a known SPDX id nor declared in licenses.declared; "
                               f"allowed: {', '.join(sorted(allowed | declared))}")
    if lid not in allowed:
        return LicenseDecision(False, lid, NOT_ALLOWED,
                               f"{lid} ({KNOWN_LICENSES[lid]}) is not in licenses.allowed: "
                               f"{', '.join(sorted(allowed))}")
    if cfg.require_attribution_for_by and lid.startswith("CC-BY") and not (author.strip() or attribution.strip()):
        return LicenseDecision(False, lid, "missing attribution",
                               f"{lid} requires attribution but the row has neither author nor attribution")
    return LicenseDecision(True, lid)
