"""The Bot Framework edge: the only code that imports botbuilder, botframework or msrest.

- `ChannelAdapter` (adapter): runs a turn for an inbound activity, sends proactively, updates
  and deletes what it sent (`update_activity`, `delete_activity`: SDK-free signatures).
- `Turn`, `TurnLogic`, `BeforeReply`, `Inbound`, `Member`, `TeamsEvent` (turn): what the bot's logic sees, SDK-free.
- `parse_activity`, `conversation_reference`, `InvalidActivity` (activity): inbound, for this
  package and tests; `outgoing`, `PreparedActivity` (activity): an activity to send to many,
  opaque outside this package.
- `AuthenticationError`, `AuthenticationUnavailable` (auth): inbound tokens.
- `ConnectorError`, `TokenProvider` (connector): the Connector REST API and the bot's token.
- `ServiceUrlPolicy`, `ServiceUrlNotAllowed` (service_urls): where the bot's token may go.

A port to the Microsoft 365 Agents SDK replaces this package and keeps its face.
"""

from ..lazy import exports

_NAMES = {
    "ChannelAdapter": "adapter",
    "Turn": "turn",
    "TurnLogic": "turn",
    "BeforeReply": "turn",
    "Inbound": "turn",
    "Member": "turn",
    "TeamsEvent": "turn",
    "InvalidActivity": "activity",
    "parse_activity": "activity",
    "conversation_reference": "activity",
    "outgoing": "activity",
    "PreparedActivity": "activity",
    "AuthenticationError": "auth",
    "AuthenticationUnavailable": "auth",
    "ConnectorError": "connector",
    "TokenProvider": "connector",
    "ServiceUrlNotAllowed": "service_urls",
    "ServiceUrlPolicy": "service_urls",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
