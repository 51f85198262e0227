import azure.functions as func

from shared import record


def main(timer: func.TimerRequest) -> None:
    record("sample_timer", past_due=timer.past_due)
