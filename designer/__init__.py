"""Pipedeck's Django project and app: the designer, runs, teams."""
