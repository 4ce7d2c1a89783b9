{#- Each gold table sorted for the dashboard's lookups (by page, by editor, by wiki) holds
    its source's rows: per closed hour (an insert reaches a source and its copy as two
    parts, committed one after the other), the same sums and the same checksum of every
    key with its count (a row under another page, editor or wiki changes the checksum).
    Gold against gold: silver's retention does not touch it. -#}

with

pages as (

    select hour, sum(edits) as n, sum(edits * cityHash64(wiki, user_kind, namespace, title)) as checksum
    from {{ ref('page_edits_per_hour') }}
    where hour < toStartOfHour({{ closed_before() }})
    group by hour

),

pages_by_page as (

    select hour, sum(edits) as n, sum(edits * cityHash64(wiki, user_kind, namespace, title)) as checksum
    from {{ ref('page_edits_by_page') }}
    where hour < toStartOfHour({{ closed_before() }})
    group by hour

),

editors as (

    select hour, sum(changes) as n, sum(changes * cityHash64(wiki, user_kind, user)) as checksum
    from {{ ref('editor_edits_per_hour') }}
    where hour < toStartOfHour({{ closed_before() }})
    group by hour

),

editors_by_editor as (

    select hour, sum(changes) as n, sum(changes * cityHash64(wiki, user_kind, user)) as checksum
    from {{ ref('editor_edits_by_editor') }}
    where hour < toStartOfHour({{ closed_before() }})
    group by hour

),

wikis as (

    select hour, sum(events) as n, sum(events * cityHash64(wiki, user_kind)) as checksum
    from {{ ref('events_per_hour_wiki') }}
    where hour < toStartOfHour({{ closed_before() }})
    group by hour

),

wikis_by_wiki as (

    select hour, sum(events) as n, sum(events * cityHash64(wiki, user_kind)) as checksum
    from {{ ref('wiki_events_per_hour') }}
    where hour < toStartOfHour({{ closed_before() }})
    group by hour

),

differences as (

    select 'page_edits_by_page' as model, hour, pages.n as source_n, copy.n as copy_n
    from pages full outer join pages_by_page as copy using (hour)
    where pages.n != copy.n or pages.checksum != copy.checksum

    union all

    select 'editor_edits_by_editor' as model, hour, editors.n, copy.n
    from editors full outer join editors_by_editor as copy using (hour)
    where editors.n != copy.n or editors.checksum != copy.checksum

    union all

    select 'wiki_events_per_hour' as model, hour, wikis.n, copy.n
    from wikis full outer join wikis_by_wiki as copy using (hour)
    where wikis.n != copy.n or wikis.checksum != copy.checksum

)

select * from differences
