"""What-if: plan and simulate a changed scenario beside the unchanged one.

Public API: :class:`WhatIfScenario`, :class:`SpikeSpec`, :func:`parse_scenario`,
:func:`run_what_if`, :class:`WhatIfResult`, :class:`WhatIfError`, :func:`what_if_inputs`.
"""

from __future__ import annotations

from capplan_core.whatif.run import WhatIfResult, run_what_if, what_if_inputs
from capplan_core.whatif.scenario import SpikeSpec, WhatIfError, WhatIfScenario, parse_scenario

__all__ = [
    "SpikeSpec",
    "WhatIfError",
    "WhatIfResult",
    "WhatIfScenario",
    "parse_scenario",
    "run_what_if",
    "what_if_inputs",
]
