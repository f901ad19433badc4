"""Global quotas: limits, classes, per-site usage and the rebalance math."""
