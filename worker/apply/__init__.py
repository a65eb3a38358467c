"""The rule set: which applier applies each event class (`registry`), the set-based appliers and the
inbox (`bulk`), command handlers, one event at a time (`handlers`), parked events, and how a failure
is classed (`faults`). Every path that applies an event (the worker's batches, parked retries,
maintenance jobs) comes through here, on a connection or session its caller's transaction gives."""
