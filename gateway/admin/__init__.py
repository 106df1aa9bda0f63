"""The admin side: journal API, statistics, metrics and the dashboard, on their own port."""
