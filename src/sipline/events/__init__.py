"""Events the Bitrix24 way: bindings, the offline queue, deliveries (docs/behaviour.md#events)."""
