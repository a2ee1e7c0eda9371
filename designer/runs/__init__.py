"""The run queue, the background worker and the adapter that feeds runs to the orchestrator."""
