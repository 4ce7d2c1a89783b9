{{ config(enabled=var('dumps', false)) }}

{#- Every pageviews gold view equals summing silver's published rows directly, key by
    key; returns the keys where they differ. -#}

with

silver as (

    select * from {{ ref('pageviews') }}
    where {{ dumps_visible() }}

),

by_hour as (

    select hour, wiki, access, sum(toUInt64(views)) as views
    from silver group by hour, wiki, access

),

by_day as (

    select toDate(hour) as day, wiki, sum(toUInt64(views)) as views
    from silver group by day, wiki

),

top_page as (

    select toDate(hour) as day, wiki, title, sum(toUInt64(views)) as views
    from silver group by day, wiki, title
    order by views desc, title limit 1 by day, wiki

)

select 'pageviews_hour_wiki' as model, toString(tuple(hour, wiki, access)) as key, g.views as gold, s.views as silver
from (select hour, wiki, access, sum(views) as views from {{ ref('pageviews_hour_wiki') }} group by all) as g
full outer join by_hour as s using (hour, wiki, access)
where g.views != s.views

union all

select 'pageviews_day_wiki', toString(tuple(day, wiki)), g.views, s.views
from (select day, wiki, sum(views) as views from {{ ref('pageviews_day_wiki') }} group by all) as g
full outer join by_day as s using (day, wiki)
where g.views != s.views

union all

select 'top_pages_day (views of the top page)', toString(tuple(day, wiki)), g.views, s.views
from (select day, wiki, views from {{ ref('top_pages_day') }} where rank = 1 and error = 0) as g
inner join top_page as s using (day, wiki)
where g.views != s.views
