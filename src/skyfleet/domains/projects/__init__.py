"""Global projects and how they map to each site's projects."""
