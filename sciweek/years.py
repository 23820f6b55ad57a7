"""The years sciweek accepts anywhere a year or a date is typed or asked for (reports,
coverage, targets, campaigns, sessions, the public listing). Depends on nothing, so models,
forms and services can all import it.

The ``year`` CHECK constraints of ``district_targets`` and ``coverage_targets`` are built
from these (``models.training``): changing them needs a migration of those constraints.
"""

YEAR_MIN, YEAR_MAX = 2000, 2100
