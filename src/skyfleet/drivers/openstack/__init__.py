"""Driver for real (and simulated) OpenStack sites, through keystoneauth and openstacksdk."""
