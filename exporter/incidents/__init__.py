"""The incident journal: Alertmanager's notifications kept as incidents, with who acknowledged them, why
they happened and how they were resolved (Alertmanager itself keeps no history)."""
