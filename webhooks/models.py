"""Webhook endpoints, events and deliveries (the transactional outbox of DESIGN D4) land here."""
