"""localaws's CloudWatch metric alarms: evaluated as AWS documents, with SNS actions and history.

A package in moto's layout:

* :mod:`.evaluation` - the state an evaluation gives (M of N, TreatMissingData, percentiles), pure
  functions with the sources of each rule in its docstring;
* :mod:`.models` - patches of moto's CloudWatch backend (validation, initial state, state kept on
  update, SetAlarmState with history and actions), the SNS notification, the evaluator thread
  :data:`EVALUATOR`;
* :mod:`.responses` - DescribeAlarmHistory, and DescribeAlarms with AWS's combined filters.

docs/localaws.md ("CloudWatch alarms") documents the behaviour.
"""

from localaws.services.cloudwatch_alarms import models, responses
from localaws.services.cloudwatch_alarms.models import EVALUATOR, evaluate_all


def install() -> None:
    """Patch moto's CloudWatch (idempotent)."""
    models.install()
    responses.install()


__all__ = ["EVALUATOR", "evaluate_all", "install"]
