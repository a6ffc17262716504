"""Retention offers: the catalogue, customer value, and the policy that picks the offer that pays."""
