"""Accounts: invitations to a team by e-mail (a one-time link) and the optional open sign-up."""
