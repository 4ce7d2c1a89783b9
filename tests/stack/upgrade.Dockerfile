# The stack test's "new version": the test image with a changed gold model, so its
# models digest differs and dbt must build before the loader may write again.
FROM wiki-events-test/app:test
RUN printf '\n-- changed by the stack test'"'"'s upgrade: a new models digest\n' \
    >> /app/wiki_dbt/models/marts/events_per_minute.sql
