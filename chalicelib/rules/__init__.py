"""Rules about subscribers, shared by two callers.

The API applies them when a subscription is created or updated, and refuses
what breaks them; the notifier applies them again when it delivers, because
a subscription may predate a rule and a host name may resolve elsewhere by
then. Everything here is pure: no storage, no configuration lookups.
"""
