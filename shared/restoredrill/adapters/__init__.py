"""The adapters: boto3 (:mod:`.aws`, the only boto3 user), Slack (:mod:`.slack`) and CloudWatch
metrics (:mod:`.telemetry`). They implement :mod:`restoredrill.ports.gateways` and depend on the
ports' and the domain's types, never the reverse."""
