"""Business KPIs: SQL and HTTP-JSON sources queried on their own schedule, served from a cache."""
