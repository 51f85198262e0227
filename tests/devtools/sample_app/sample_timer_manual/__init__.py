import azure.functions as func

from .. import shared


async def main(timer: func.TimerRequest, context: func.Context) -> None:
    shared.record("sample_timer_manual", past_due=timer.past_due, function_name=context.function_name)
