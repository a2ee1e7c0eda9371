"""All designer models, re-exported so ``from designer.models import X`` works for every part."""

from designer.models.pipelines import Pipeline, PipelineVersion, Project
from designer.models.teams import ROLE_CHOICES, Membership, Role, Team

__all__ = ["ROLE_CHOICES", "Membership", "Pipeline", "PipelineVersion", "Project", "Role", "Team"]

# Other engineers: add `from designer.models.<module> import ...` lines below (runs, library).
from designer.models.library import ActivityEvent, Secret, Variable  # noqa: E402

__all__ += ["ActivityEvent", "Secret", "Variable"]
from designer.models.runs import PipelineRun, Run, RunEvent, RunState, StepRun  # noqa: E402

__all__ += ["PipelineRun", "Run", "RunEvent", "RunState", "StepRun"]
