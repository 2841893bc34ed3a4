"""Forged job variables (issue 24), against a real Prefect server: a Prefect user who may
start runs tries to set what the work pool's job template pins — the environment (an
approver's key variable, CAPPLAN_SCALER=dry-run), the image, the command, the service
account, the namespace, the settings secret, another cluster — on a run or on a deployment.
The server refuses each (422: the template's variables schema has no such variable and allows
no others), and a run with a benign override is still made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]

TEMPLATE = Path(__file__).resolve().parents[3] / "deployments" / "work-pool-base-job-template.json"
FORGED = [
    {"env": {"CAPPLAN_APPROVER_KEY_ALICE": "chosen-by-mallory"}},
    {"env": {"CAPPLAN_SCALER": "dry-run"}},
    {"image": "registry.example.com/mallory:1"},
    {"command": "sh -c 'cat /var/run/secrets/kubernetes.io/serviceaccount/token'"},
    {"service_account_name": "default"},
    {"namespace": "kube-system"},
    {"settings_secret": "other-settings"},
    {"cluster_config": {"config": {}, "context_name": "elsewhere"}},
]


def test_a_run_or_deployment_cannot_set_what_the_job_template_pins(prefect_server) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import PrefectHTTPStatusError

    template = json.loads(TEMPLATE.read_text())
    with get_client(sync_client=True) as client:
        client.create_work_pool(
            WorkPoolCreate(name="capplan-pinned", type="kubernetes", base_job_template=template),
            overwrite=True,
        )
        flow_id = client.create_flow_from_name("capacity-plan")
        dep = client.create_deployment(flow_id, "pinned-probe", work_pool_name="capplan-pinned")
        refused = []
        for forged in FORGED:
            with pytest.raises(PrefectHTTPStatusError) as err:
                client.create_flow_run_from_deployment(dep, job_variables=forged)
            assert err.value.response.status_code == 422, forged
            refused.append(next(iter(forged)))
            with pytest.raises(PrefectHTTPStatusError) as err:
                client.create_deployment(
                    flow_id,
                    f"forged-{len(refused)}",
                    work_pool_name="capplan-pinned",
                    job_variables=forged,
                )
            assert err.value.response.status_code == 422, forged
        assert len(refused) == len(FORGED)
        # what a run may still choose: resources and timeouts
        run = client.create_flow_run_from_deployment(dep, job_variables={"memory_limit": "3Gi"})
        assert run.job_variables == {"memory_limit": "3Gi"}
