"""The engine: periodic work and the per-site fan-out that keeps Skyfleet's store in step with sites."""
