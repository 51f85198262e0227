def main(blob) -> None:
    raise AssertionError("a disabled function must never run")
