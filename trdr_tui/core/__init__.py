"""Domain types, Clock, EventBus, order state machine and errors. No I/O, no Textual."""
