-- The application role's privileges: what processor Jobs write and the read endpoints query.
-- No DDL, DELETE or TRUNCATE; UPDATE only of the columns the processor's upserts change; nothing
-- on schema_migrations. Re-applied after every `python -m processor migrate` run with
-- DATABASE_APP_ROLE set: revoking first makes the grants converge to exactly this list, so a
-- new migration's table needs a line here (tests/security/test_postgres_roles.py checks it).
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role};
GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {role};
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT ON vote_events, dead_letters TO {role};
GRANT SELECT, INSERT ON ballots, tally TO {role};
GRANT UPDATE (option, entry_ms, entry_seq, previous_option, updated_at) ON ballots TO {role};
GRANT UPDATE (votes) ON tally TO {role};
