"""Teams: members and roles, secrets, variables, run limits, the library of pipelines and templates,
the activity feed."""
