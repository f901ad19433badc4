"""Events: the append-only record of what happened in the fleet."""
