"""The domain layer: the drill's use cases and rules (start, advance, sweep, the run state
machine, eligibility, the report and its chain, the Slack announcement, the password broker and
the checker's side). Takes its adapters as arguments; imports only :mod:`restoredrill.ports`, the
check suite and itself, never an adapter or boto3."""
