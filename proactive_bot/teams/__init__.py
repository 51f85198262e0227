"""Teams reach: where the app is installed, who it can reach through those installs, and the
conversations the bot creates to reach them.

- `TeamsStore`, `Team`, `RosterMember`, `RosterState` (store): teams, channels, group chats,
  roster members and the users reachable through them.
- `TeamsInstalls`, `Change` (installs): install, uninstall, roster and rename events.
- `RosterWalk` (roster): a team's members read page by page through the work queue.
- `ChatOpener`, `Opened` (chats): a user's 1:1 chat created by the bot; new channel threads.
"""

from ..lazy import exports

_NAMES = {
    "TeamsStore": "store",
    "Team": "store",
    "RosterMember": "store",
    "RosterState": "store",
    "TeamsInstalls": "installs",
    "Change": "installs",
    "RosterWalk": "roster",
    "ChatOpener": "chats",
    "Opened": "chats",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
