"""The app's models, each defined in its feature's package; Django imports this module to find them."""

from designer.accounts.models import Invitation
from designer.editor.models import DraftEdit, Pipeline, PipelineVersion, Project
from designer.runs.models import PipelineRun, Run, RunEvent, StepOutput, StepRun, WorkerBeat
from designer.teams.models import ActivityEvent, Membership, Secret, Team, Variable
from designer.triggers.models import (
    AlertDestination,
    Backfill,
    BackfillDate,
    Delivery,
    RunParameter,
    Schedule,
    ScheduleFire,
    Webhook,
    WebhookCall,
)

__all__ = [
    "ActivityEvent",
    "AlertDestination",
    "Backfill",
    "BackfillDate",
    "Delivery",
    "DraftEdit",
    "Invitation",
    "Membership",
    "Pipeline",
    "PipelineRun",
    "PipelineVersion",
    "Project",
    "Run",
    "RunEvent",
    "RunParameter",
    "Schedule",
    "ScheduleFire",
    "Secret",
    "StepOutput",
    "StepRun",
    "Team",
    "Variable",
    "Webhook",
    "WebhookCall",
    "WorkerBeat",
]
