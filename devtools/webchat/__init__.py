"""The local Web Chat channel of `make run`: Microsoft Web Chat in a browser, talking Direct Line
3.0 to this server, which is the bot's channel (see channel.py), plus the "another system"
panel (panel.py)."""

from .channel import DEFAULT_PORT, WebChatChannel
from .conversations import BOT, CHANNEL_ID
from .panel import FrontDoorSender, Panel, QueueSender, Receipt, notification, sender_for

__all__ = [
    "BOT",
    "CHANNEL_ID",
    "DEFAULT_PORT",
    "FrontDoorSender",
    "Panel",
    "QueueSender",
    "Receipt",
    "WebChatChannel",
    "notification",
    "sender_for",
]
