# Step outputs (issue 15): previews, kept outputs, resumes, the reused step state.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("designer", "0008_team_editing"),
    ]

    operations = [
        migrations.AddField(
            model_name="project",
            name="keep_outputs",
            field=models.BooleanField(default=True),
        ),
        migrations.AddField(
            model_name="run",
            name="keep_outputs",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="run",
            name="kind",
            field=models.CharField(
                choices=[("run", "Run"), ("preview", "Preview")], default="run", max_length=16
            ),
        ),
        migrations.AddField(
            model_name="run",
            name="outputs_kept",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="run",
            name="preview_step",
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AddField(
            model_name="run",
            name="resume_steps",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="run",
            name="resumed_from",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="resumes",
                to="designer.run",
            ),
        ),
        migrations.AlterField(
            model_name="pipelinerun",
            name="state",
            field=models.CharField(
                choices=[
                    ("queued", "queued"),
                    ("running", "running"),
                    ("succeeded", "succeeded"),
                    ("failed", "failed"),
                    ("skipped", "skipped"),
                    ("cancelled", "cancelled"),
                    ("reused", "reused"),
                ],
                default="queued",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="steprun",
            name="state",
            field=models.CharField(
                choices=[
                    ("queued", "queued"),
                    ("running", "running"),
                    ("succeeded", "succeeded"),
                    ("failed", "failed"),
                    ("skipped", "skipped"),
                    ("cancelled", "cancelled"),
                    ("reused", "reused"),
                ],
                default="queued",
                max_length=16,
            ),
        ),
        migrations.CreateModel(
            name="StepOutput",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("pipeline", models.CharField(max_length=200)),
                ("phase", models.CharField(max_length=40)),
                ("step_id", models.CharField(max_length=200)),
                ("columns", models.JSONField(default=list)),
                ("rows", models.BigIntegerField(blank=True, null=True)),
                ("nulls", models.JSONField(blank=True, null=True)),
                ("sample", models.JSONField(default=list)),
                ("truncated", models.BooleanField(default=False)),
                ("kept_file", models.CharField(blank=True, max_length=300)),
                ("reused", models.BooleanField(default=False)),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="step_outputs",
                        to="designer.run",
                    ),
                ),
            ],
            options={
                "ordering": ["run", "pk"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("run", "pipeline", "phase", "step_id"), name="uniq_stepoutput_step"
                    )
                ],
            },
        ),
    ]
