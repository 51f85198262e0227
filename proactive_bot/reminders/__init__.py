"""Reminders: what users ask to be reminded of, and the timer that sends what is due.

- `schedules`: "remind me ..." read in the user's time zone; recurrences.
- `ReminderStore`, `Reminder`, `Entry`, `EntryState`, `Owner` (store): due rows + user entries.
- `ReminderDialogs`, `Asker` (dialogs): remind / reminders / cancel / timezone / answers.
- `reminder_activity`, `read_answer` (cards): the delivered reminder and the answer to it.
- `ReminderTimer`, `RunSummary` (timer): one timer run: claim, send, next, retry, give up.
- `report` (report): the `report` long task.
"""

from ..lazy import exports

_NAMES = {
    "ReminderStore": "store",
    "Reminder": "store",
    "Entry": "store",
    "EntryState": "store",
    "Owner": "store",
    "ReminderDialogs": "dialogs",
    "Asker": "dialogs",
    "reminder_activity": "cards",
    "read_answer": "cards",
    "ReminderTimer": "timer",
    "RunSummary": "timer",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
