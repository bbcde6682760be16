"""The adapters: AWS through boto3 (:mod:`.aws`, the only boto3 user) and Slack (:mod:`.slack`).
They implement :mod:`restoredrill.ports.gateways` and depend on the ports' types, never the
reverse."""
