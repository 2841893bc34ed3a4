"""Bad policies fail validation with a message naming the policy, the field and the value."""

from __future__ import annotations

import pytest

from capplan_app.bootstrap import DEMO_POLICIES
from capplan_core.policy import PolicyError, load_policies, parse_policies


def _doc(**over):
    p = {
        "name": "emails",
        "queue": "emails",
        "target": {"name": "w"},
        "slo": {"wait_p95_seconds": 30},
    }
    for k, v in over.items():
        p[k] = v
    return {"policies": [p]}


def test_demo_policies_cover_every_mode():
    modes = {p.name: p.mode.value for p in load_policies(DEMO_POLICIES)}
    assert {"manual", "auto", "advisory"} <= set(modes.values())


def test_wait_p95_alias_sets_the_quantile_slo():
    p = parse_policies(_doc())[0]
    assert (p.slo.wait_seconds, p.slo.wait_quantile) == (30, 0.95)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"slo": {"wait_p95_seconds": -5}}, "policy 'emails': slo.wait_p95_seconds"),
        ({"slo": {"wait_seconds": 30, "wait_quantile": 1.5}}, "slo.wait_quantile"),
        ({"slo": {"wait_seconds": 30, "wait_quantile": 0}}, "slo.wait_quantile"),
        (
            {"scaling": {"min_workers": 9, "max_workers": 3}},
            "min_workers (9) must be <= max_workers (3)",
        ),
        ({"mode": "yolo"}, "policy 'emails': mode"),
        ({"scaling": {"max_step": 0}}, "scaling.max_step"),
        ({"slo": {}}, "slo needs at least one term"),
        ({"target": {"name": "w", "kind": "statefulset"}}, "target.kind"),
        ({"scaling": {"cooldown": 5}}, "scaling.cooldown"),
    ],
)
def test_bad_policy_values_name_the_field(override, needle):
    with pytest.raises(PolicyError) as exc:
        parse_policies(_doc(**override))
    assert needle in str(exc.value)


def test_bad_value_is_shown():
    with pytest.raises(PolicyError, match=r"got -5"):
        parse_policies(_doc(slo={"wait_p95_seconds": -5}))


def test_duplicate_names_and_missing_list(tmp_path):
    doc = _doc()
    doc["policies"].append(dict(doc["policies"][0]))
    with pytest.raises(PolicyError, match="duplicate policy name 'emails'"):
        parse_policies(doc)
    f = tmp_path / "p.yaml"
    f.write_text("queues: []\n")
    with pytest.raises(PolicyError, match="top-level 'policies' list"):
        load_policies(f)
    f.write_text("policies: [\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policies(f)


@pytest.mark.parametrize("queue", ["emails:hb", "emails:hb:w1", "a:b:hb"])
def test_a_queue_name_that_would_share_redis_keys_with_heartbeats_is_refused(queue):
    """``capplan:q:<queue>:<suffix>`` vs a heartbeat ``capplan:q:<other>:hb:<worker>``: a
    queue named ``emails:hb`` would write its counter ``capplan:q:emails:hb:enqueued`` onto
    the heartbeat of queue ``emails``'s worker ``enqueued`` (issue 24)."""
    owner = queue[: queue.index(":hb")]
    with pytest.raises(PolicyError) as exc:
        parse_policies(_doc(queue=queue))
    assert f"policy 'emails': queue: {queue!r}" in str(exc.value)
    assert f"worker heartbeats of queue {owner!r}" in str(exc.value)


@pytest.mark.parametrize("queue", ["hb", "hb:emails", "emails:hbx", "rq:high", "a.hb"])
def test_queue_names_with_colons_that_collide_with_nothing_are_kept(queue):
    assert parse_policies(_doc(queue=queue))[0].queue == queue
