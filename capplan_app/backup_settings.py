"""Where the backups are: ``CAPPLAN_BACKUP_*`` settings, read by ``capplan db backup|restore``.

Kept apart from :class:`capplan_app.settings.Settings` (the processes of the loop never read
them): only the machine that runs the PostgreSQL cluster and pgBackRest needs them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from capplan_adapters.pgbackrest import Cluster, Repo


class BackupSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAPPLAN_BACKUP_", extra="ignore")

    cluster: str = Field(
        "15/main",
        pattern=r"^\d+/[A-Za-z0-9_.-]+$",
        description="the Debian cluster (VERSION/NAME, pg_lsclusters) "
        "holding capplan's store and Prefect's database",
    )
    stanza: str = Field(
        "capplan", pattern=r"^[A-Za-z0-9_-]+$", description="pgBackRest stanza of that cluster"
    )
    config: Path = Field(
        Path("/etc/pgbackrest/capplan.conf"),
        description="the stanza's pgBackRest config "
        "(rendered from deployments/backup/pgbackrest.conf)",
    )
    repo_path: Path = Field(
        Path("/var/lib/pgbackrest/capplan"),
        description="repository: backups and archived WAL; on a disk "
        "that does not die with the database",
    )
    log_path: Path = Path("/var/log/pgbackrest")
    lock_path: Path = Path("/tmp/pgbackrest")
    archive_timeout_s: int = Field(
        30,
        ge=1,
        le=3600,
        description="archive a WAL segment at least this often "
        "(s) while anything is written: the RPO",
    )

    def repo(self) -> Repo:
        return Repo(
            self.stanza,
            self.config,
            self.repo_path,
            self.log_path,
            self.lock_path,
            self.archive_timeout_s,
        )

    def find_cluster(self) -> Cluster:
        return Cluster.find(self.cluster)


@lru_cache(maxsize=1)
def get_backup_settings() -> BackupSettings:
    return BackupSettings()
