"""The app's models, each defined in its feature's package; Django imports this module to find them."""

from designer.editor.models import Pipeline, PipelineVersion, Project
from designer.runs.models import PipelineRun, Run, RunEvent, StepRun
from designer.teams.models import ActivityEvent, Membership, Secret, Team, Variable

__all__ = [
    "ActivityEvent",
    "Membership",
    "Pipeline",
    "PipelineRun",
    "PipelineVersion",
    "Project",
    "Run",
    "RunEvent",
    "Secret",
    "StepRun",
    "Team",
    "Variable",
]
