"""Triggers and alerts: run parameters, schedules, webhooks, backfills and notifications (README, "Triggers
and alerts")."""
