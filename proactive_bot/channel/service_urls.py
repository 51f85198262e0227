"""Which serviceUrls the bot will talk to: the guard between a stored address and the bot's token.

A ConversationReference's serviceUrl decides where a send goes, and a send carries the bot's
bearer token. The URL comes from an inbound activity (signed by the channel when auth is on, but
anything at all in local mode) and then sits in Table Storage, where anyone with the storage key
can edit it. So before any connector client is made for a URL, it must name a host we trust:
the Bot Framework channel hosts by default (setting `AllowedServiceUrlHosts`), and loopback only
in local mode, where there is no token to lose.
"""

from __future__ import annotations

import ipaddress
import string
from collections.abc import Iterable
from dataclasses import dataclass

from yarl import URL

# Where the Bot Framework's channels live. Exact hosts, or `*.` for any subdomain: a whole
# registrable domain only where Microsoft owns every name under it (not *.trafficmanager.net,
# where anyone can create a profile).
DEFAULT_HOSTS = (
    "*.botframework.com",  # Web Chat, Direct Line (and its regional hosts), Slack, Telegram, ...
    "smba.trafficmanager.net",  # Microsoft Teams, public cloud
    "smba.infra.gcc.teams.microsoft.com",  # Teams GCC
    "smba.infra.gov.teams.microsoft.us",  # Teams GCC High
    "smba.infra.dod.teams.microsoft.us",  # Teams DoD
    "*.botframework.azure.us",  # Azure Government channels
)
# In AllowedServiceUrlHosts, this word stands for DEFAULT_HOSTS, so a list can extend them.
DEFAULT_KEYWORD = "default"
_LOOPBACK_NAMES = frozenset({"localhost"})
_REJECTED_CHARS = frozenset(string.whitespace) | frozenset(map(chr, range(0x20))) | {"\x7f", "\\"}


class ServiceUrlNotAllowed(ValueError):
    """A serviceUrl names a host the bot must not send to (or is not a plain https URL)."""


def is_loopback(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServiceUrlPolicy:
    """`check(url)` passes or raises ServiceUrlNotAllowed with the reason."""

    hosts: tuple[str, ...] = DEFAULT_HOSTS
    allow_loopback: bool = False  # local mode: the Emulator and the local channel stub

    @classmethod
    def from_settings(cls, hosts: Iterable[str], *, local_mode: bool) -> ServiceUrlPolicy:
        expanded: list[str] = []
        for entry in hosts or (DEFAULT_KEYWORD,):
            entry = entry.strip().lower().rstrip(".").strip("[]")
            if entry == DEFAULT_KEYWORD:
                expanded.extend(DEFAULT_HOSTS)
            elif entry:
                if "/" in entry or (":" in entry and not _is_ip(entry)):
                    raise ValueError(f"AllowedServiceUrlHosts takes host names, not URLs: {entry!r}")
                expanded.append(entry)
        return cls(tuple(dict.fromkeys(expanded)), allow_loopback=local_mode)

    def check(self, service_url: str) -> URL:
        """The parsed URL if the bot may send there; otherwise ServiceUrlNotAllowed says why."""
        if not isinstance(service_url, str) or not service_url:
            raise ServiceUrlNotAllowed("the serviceUrl is empty")
        if not service_url.isascii() or any(ch in _REJECTED_CHARS for ch in service_url):
            # Channel URLs are plain ASCII; the rest is where parsers disagree (IDNA mapping,
            # stripped tabs and newlines, backslashes read as slashes).
            raise ServiceUrlNotAllowed("the serviceUrl holds non-ASCII, whitespace, control characters or a backslash")
        try:
            # yarl is what aiohttp parses the URL with, so the host checked is the host dialled.
            url = URL(service_url)
        except (ValueError, TypeError, UnicodeError) as error:
            raise ServiceUrlNotAllowed(f"the serviceUrl does not parse: {error}") from None
        if not url.is_absolute() or not url.host:
            raise ServiceUrlNotAllowed("the serviceUrl is not an absolute URL")
        if url.user is not None or url.password is not None or url.query_string or url.fragment:
            # Nothing a channel sends has these; each is a way to make a URL read as one host
            # and connect to another, or to change where our appended path ends up.
            raise ServiceUrlNotAllowed("the serviceUrl has user info, a query or a fragment")
        host = url.host.rstrip(".").lower()
        if url.scheme not in ("http", "https"):
            raise ServiceUrlNotAllowed(f"the serviceUrl must be https, not {url.scheme}")
        if is_loopback(host):
            # Plain http only here: a token sent to loopback never leaves the machine.
            if self.allow_loopback or self._listed(host):
                return url
            raise ServiceUrlNotAllowed(f"loopback host {host} is only allowed in local mode")
        if url.scheme != "https":
            raise ServiceUrlNotAllowed(f"the serviceUrl must be https, not {url.scheme}")
        if not self._listed(host):
            raise ServiceUrlNotAllowed(f"host {host} is not in AllowedServiceUrlHosts")
        return url

    def allows(self, service_url: str) -> bool:
        try:
            self.check(service_url)
        except ServiceUrlNotAllowed:
            return False
        return True

    def _listed(self, host: str) -> bool:
        for pattern in self.hosts:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]):
                    return True
            elif host == pattern:
                return True
        return False


def _is_ip(entry: str) -> bool:
    try:
        ipaddress.ip_address(entry)
    except ValueError:
        return False
    return True
