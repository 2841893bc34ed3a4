"""Approval: everything capplan decides or checks before a plan may run, in one place.

* :mod:`.rules` -- what the policy decides about a new plan (record, approve as capplan,
  approve up to a cap, ask a person, hold), with the reasons and alerts;
* :mod:`.cap` -- an approver's ``max_workers`` cap: when it is allowed, the steps it leaves;
* :mod:`.auth` -- who may decide (listed approvers, distinct requesters) and the approval
  code that proves a decision is theirs;
* :mod:`.refusals` -- why an approval is refused (a newer plan, a refused cap): the one text
  the store, the CLI and the approval form all give;
* :mod:`.service` -- the use cases over the plan store: apply the policy to a new plan,
  authenticate a person's submission, record a decision (or the plan's expiry).

Nothing here imports Prefect: the approval form, the pause and the events are in
``tasks/approve.py``; the approve-plan run that waits is ``flows/approve_plan.py``.
"""
