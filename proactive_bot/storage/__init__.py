"""Azure Table Storage helpers shared by the stores.

- `table_key` (keys): any id as a PartitionKey/RowKey, one-to-one.
- `CoalescedWrites` (batching): rows written close together go out as one transaction.
- `one_page` (paging): one page of a query and the cursor of the next.
- `storage_clients` (services): the table and queue service clients, with their retry settings.
"""

from ..lazy import exports

_NAMES = {
    "table_key": "keys",
    "CoalescedWrites": "batching",
    "Write": "batching",
    "one_page": "paging",
    "storage_clients": "services",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
