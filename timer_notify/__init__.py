"""Timer: sends the reminders that are due (schedule: the TimerSchedule app setting)."""

import azure.functions as func

from proactive_bot import app


async def main(timer: func.TimerRequest) -> None:
    await app.send_due_reminders()
