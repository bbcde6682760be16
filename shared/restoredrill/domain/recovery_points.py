"""AWS Backup recovery points: which ones this stack drills (opt-in and Region), and what a
refusal of their restore says (docs/aws-backup.md)."""

from __future__ import annotations

from restoredrill.domain.eligibility import DrillRejected
from restoredrill.ports.config import DrillSettings
from restoredrill.ports.gateways import EffectRejected
from restoredrill.ports.records import RecoveryPoint, RunRecord
from restoredrill.ports.recovery_points import recovery_point_region

# Where the alternative to a direct restore is described.
REFUSAL_GUIDE = 'docs/aws-backup.md, "When RDS refuses a recovery point"'


def listed_opt_in(recovery_point: RecoveryPoint, settings: DrillSettings) -> str | None:
    """Why the stack's configuration opts this recovery point in (its vault or its backup plan
    is listed); None when only the source's tag can."""
    if recovery_point.vault_name and recovery_point.vault_name in settings.opt_in_vaults:
        return f"vault {recovery_point.vault_name} is listed in BackupOptInVaults"
    plan = recovery_point.backup_plan_id
    if plan and plan in settings.opt_in_plans:
        return f"backup plan {plan} is listed in BackupOptInPlanIds"
    return None


def check_region(recovery_point: RecoveryPoint, settings: DrillSettings) -> None:
    """A stack drills the recovery points of its own Region: a copy made into another Region is
    drilled by the stack deployed there (the restore needs the snapshot in the Region of the
    call)."""
    region = recovery_point_region(recovery_point)
    if settings.aws_region and region and region != settings.aws_region:
        raise DrillRejected(
            f"recovery point {recovery_point.recovery_point_arn} is in {region}, not in this "
            f"stack's Region {settings.aws_region}: the stack deployed in {region} drills it"
        )


def restore_refused(rejected: EffectRejected, run: RunRecord) -> EffectRejected:
    """RDS's refusal of a recovery point's direct restore, naming the recovery point and the
    alternative (the same code: the verdict and a requeue still follow the code)."""
    assert run.recovery_point is not None
    operation = (
        "RestoreDBClusterFromSnapshot" if run.is_cluster else "RestoreDBInstanceFromDBSnapshot"
    )
    return EffectRejected(
        rejected.code,
        f"{rejected.message} (RDS refused {operation} of AWS Backup recovery point "
        f"{run.recovery_point.recovery_point_arn}; the alternative is a restore through AWS "
        f"Backup's StartRestoreJob, which this version does not make: see {REFUSAL_GUIDE})",
    )
