"""Feature store on dbt."""
