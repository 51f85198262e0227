"""Azure Table Storage helpers shared by the stores.

- `table_key` (keys): any id as a PartitionKey/RowKey, one-to-one.
- `CoalescedWrites` (batching): rows written close together go out as one transaction.
"""

from ..lazy import exports

_NAMES = {"table_key": "keys", "CoalescedWrites": "batching", "Write": "batching"}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
