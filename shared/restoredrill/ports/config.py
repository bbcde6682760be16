"""Configuration, read once per cold start from the environment that template.yaml sets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class ConfigError(Exception):
    """The function's configuration is missing or invalid; the message names each bad variable."""


class DrillSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    stack_name: str = Field(min_length=1)
    run_table_name: str = Field(min_length=1)
    poll_queue_url: str = Field(min_length=1)
    drill_bus_name: str = Field(min_length=1)
    report_bucket: str = Field(min_length=1)
    check_runner_function_name: str = Field(min_length=1)
    opt_in_tag_key: str = Field(min_length=1)
    opt_in_tag_value: str = Field(min_length=1)
    drill_instance_class: str = Field(min_length=1)
    db_subnet_group_name: str = Field(min_length=1)
    drill_security_group_id: str = Field(min_length=1)
    # Fractions of a minute and the short timings below exist for the local cloud's fault tests;
    # template.yaml bounds what a deployment can set.
    drill_deadline_minutes: float = Field(gt=0, le=1440)
    poll_delay_seconds: int = Field(ge=1, le=900)
    credentials_settle_seconds: int = Field(ge=0, le=900)
    checker_timeout_seconds: int = Field(ge=1, le=900)
    checker_result_grace_seconds: int = Field(default=120, ge=1, le=900)
    claim_lease_seconds: int = Field(default=90, ge=1, le=900)
    password_parameter_prefix: str = Field(pattern=r"^/[A-Za-z0-9_./-]+$")
    run_retention_days: int = Field(default=400, ge=1)
    # Admission control (template.yaml: MaxConcurrentDrills, QuotaReserveInstances, ...).
    max_concurrent_drills: int = Field(default=3, ge=1, le=100)
    quota_reserve_instances: int = Field(default=5, ge=0)
    quota_reserve_storage_gib: int = Field(default=0, ge=0)
    max_queue_wait_minutes: float = Field(default=720, gt=0, le=10080)
    drill_policy_file: str | None = None
    # AWS Backup recovery points: drilled when the source is opted in by its tag, or when their
    # vault (by name) or backup plan (by id) is listed here (template.yaml: BackupOptInVaults,
    # BackupOptInPlanIds; comma-separated). The stack's Region (Lambda's AWS_REGION) decides
    # which copies are its own to drill.
    backup_opt_in_vaults: str = Field(default="", max_length=4096)
    backup_opt_in_plans: str = Field(default="", max_length=4096)
    aws_region: str | None = None

    @property
    def opt_in_vaults(self) -> frozenset[str]:
        return _listed(self.backup_opt_in_vaults)

    @property
    def opt_in_plans(self) -> frozenset[str]:
        return _listed(self.backup_opt_in_plans)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> DrillSettings:
        return _from_environ(cls, environ)


class CheckRunnerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    checker_function_name: str = Field(min_length=1)
    checker_timeout_seconds: int = Field(ge=1, le=900)
    # Where checks in rounds keep their plan between rounds (the policy's ``rounds``).
    check_work_bucket: str | None = Field(default=None, min_length=3, max_length=63)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> CheckRunnerSettings:
        return _from_environ(cls, environ)


class NotifySettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    slack_webhook_parameter: str = Field(pattern=r"^/[A-Za-z0-9_./-]+$")
    idempotency_table_name: str = Field(min_length=1)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> NotifySettings:
        return _from_environ(cls, environ)


def _listed(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def _from_environ(cls: type[SettingsT], environ: Mapping[str, str]) -> SettingsT:
    values = {name: environ[name.upper()] for name in cls.model_fields if name.upper() in environ}
    try:
        return cls.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{str(problem['loc'][0]).upper()}: {problem['msg']}" for problem in error.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
