import azure.functions as func

from shared import record


async def main(msg: func.QueueMessage) -> None:
    body = msg.get_body().decode("utf-8")
    record("sample_queue", body=body, dequeue_count=msg.dequeue_count, id=msg.id)
    if body == "fail":
        raise ValueError("this message always fails")
