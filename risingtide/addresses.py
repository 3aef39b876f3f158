"""Checks for the addresses people are reached at: email, UK mobile, Teams and Slack ids.

Used by the channels for their own ``to:`` lists and by ``people:`` in the config, so an
address that one accepts the other accepts too. Each check returns the address in the form
it is sent in, or raises ``ValueError`` with a message that can be shown as is.
"""

from __future__ import annotations

import email.utils
import re

__all__ = [
    "check_email_address",
    "check_slack_member",
    "check_teams_user",
    "normalise_uk_mobile",
]

# A conservative addr-spec: dot-atom local part, a domain of at least two labels.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+")


def check_email_address(value: str) -> str:
    """``value`` (``a@b.c`` or ``Name <a@b.c>``) stripped, or ``ValueError``."""
    text = value.strip() if isinstance(value, str) else ""
    _, address = email.utils.parseaddr(text)
    bare = "<" not in text
    if (
        not address
        or not _ADDRESS.fullmatch(address)
        or ".." in address
        or (bare and text != address)
        or "\n" in text
        or "\r" in text
    ):
        raise ValueError(f'"{value}" is not an email address (write e.g. duty@council.gov.uk)')
    return text


_PHONE_NOISE = re.compile(r"[\s\-().]")


def normalise_uk_mobile(value: str) -> str:
    """A UK mobile number as ``+447…``; ``ValueError`` for anything else."""
    hint = f'"{value}" is not a UK mobile number (write e.g. 07700 900123 or +44 7700 900123)'
    text = value.strip().replace("(0)", "") if isinstance(value, str) else ""
    digits = _PHONE_NOISE.sub("", text)
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    elif digits.startswith("0"):
        digits = "44" + digits[1:]
    if not digits.isdigit() or not digits.startswith("447") or len(digits) != 12:
        raise ValueError(hint)
    return "+" + digits


def check_teams_user(value: str) -> str:
    """A Teams user principal name (``asha.patel@council.gov.uk``), for an @mention."""
    text = value.strip() if isinstance(value, str) else ""
    if not _ADDRESS.fullmatch(text) or ".." in text:
        raise ValueError(
            f'"{value}" is not a Teams user principal name (write the person\'s sign-in '
            "address, e.g. asha.patel@council.gov.uk)"
        )
    return text


# Slack member ids: U… for users (W… on Enterprise Grid), upper-case letters and digits.
_SLACK_MEMBER = re.compile(r"[UW][A-Z0-9]{2,20}")


def check_slack_member(value: str) -> str:
    """A Slack member id (``U024BE7LH``), for an @mention."""
    text = value.strip() if isinstance(value, str) else ""
    if not _SLACK_MEMBER.fullmatch(text):
        raise ValueError(
            f'"{value}" is not a Slack member id (copy it from the person\'s Slack profile, '
            '"Copy member ID", e.g. U024BE7LH)'
        )
    return text
