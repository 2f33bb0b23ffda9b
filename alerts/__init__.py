"""Alerts: rules and policy, the outbox, delivery to the CRM, cards, FHIR, feedback, the population run.

Imports scoring (never serving): the population run scores through the one scoring path."""
