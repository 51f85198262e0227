"""Budget scopes: which sends share one pace.

Teams counts every request against its ceiling per app *per tenant*; other channels have one
budget per channel. A scope names one such budget: `msteams:<tenant id>` (`msteams:` for a
reference whose tenant is unknown: a bucket of its own), or the channel id. `APP_WIDE` is the
optional cap over all of them (`MaxAppSendsPerSecond`: the app's own capacity).
"""

from __future__ import annotations

from ..references import TEAMS

APP_WIDE = "*"  # not a channel id: the Bot Framework's are lower-case words


def scope_of(channel_id: str, tenant_id: str = "") -> str:
    """The budget a call to this channel (and, for Teams, tenant) counts in."""
    return f"{TEAMS}:{tenant_id}" if channel_id == TEAMS else channel_id
