"""The bottom layer: what the domain needs from the outside world (:mod:`.gateways`, the
interfaces the adapters implement) and the types every layer speaks (run records, messages
between the functions, baselines, the drill policy, settings, inbound events, the payload
transport). Imports nothing else of restoredrill."""
