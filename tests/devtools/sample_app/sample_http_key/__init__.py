import threading

import azure.functions as func


def main(req: func.HttpRequest, res: func.Out[func.HttpResponse]) -> None:
    # Sync on purpose: the host must run it on a worker thread, not the event loop.
    thread = threading.current_thread().name
    res.set(func.HttpResponse(f"item {req.route_params['id']} on {thread}", status_code=200))
