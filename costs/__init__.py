"""The segment cost view: annual cost and service use per customer segment, service area and
customer group; the concentration of cost; cost per customer-day of each model of service
production (issue 18, part 2).

Public API:
    cost_view(history, start, end, year=None, group=None) -> CostView    (costs/view.py)
    make_group(group=, codes=, age=, segment=) -> Group | None            (costs/groups.py)
    presets(), CostInputError, long_table(view), write_csv(view, path)
Pure functions over the histories the feature path builds (features.History); reading the data
is the caller's (the command line, the service). Nothing is read or computed at import.
"""

from costs.groups import CostInputError, Group, make_group, presets
from costs.production import MODELS
from costs.table import long_table, write_csv
from costs.view import CostView, GroupCosts, cost_view, default_year, years_of

__all__ = [
    "MODELS",
    "CostInputError",
    "CostView",
    "Group",
    "GroupCosts",
    "cost_view",
    "default_year",
    "long_table",
    "make_group",
    "presets",
    "write_csv",
    "years_of",
]
