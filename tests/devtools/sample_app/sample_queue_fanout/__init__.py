from typing import List

import azure.functions as func

from shared import record


def main(msg: func.QueueMessage, out: func.Out[List[str]]) -> None:
    body = msg.get_body().decode("utf-8")
    record("sample_queue_fanout", body=body)
    out.set([body.upper(), body[::-1]])
