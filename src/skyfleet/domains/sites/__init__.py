"""Sites: the OpenStack clouds Skyfleet manages."""
