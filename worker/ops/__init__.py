"""Operator jobs the worker runs as the single writer, in order with the events: dead-letter replay
and drop today (maintenance jobs join them here). The CLI and the API enqueue them and wait."""
