{{ config(enabled=var('dumps', false)) }}

{#- Per hour and domain code, the published pageviews (silver, rejected lines left out)
    add up to the projectviews file of the same hour: Wikimedia's own totals. Codes a
    --project / --wiki filter left out are not compared; a code in the pageviews but not
    in projectviews is a difference, except the empty code, whose presence in the
    projectviews files is unconfirmed. Returns the differences. -#}

with

pages as (

    select hour, domain_code, sum(toUInt64(views)) as views
    from {{ ref('pageviews') }}
    where {{ dumps_visible() }}
    group by hour, domain_code

),

projects as (

    select hour, domain_code, sum(views) as views
    from {{ ref('projectviews') }}
    where {{ dumps_visible() }}
    group by hour, domain_code

),

loaded_hours as (

    select distinct hour from projects

)

select
    pages.hour as hour,
    pages.domain_code as domain_code,
    pages.views as page_views,
    projects.views as project_views
from pages
left join projects on pages.hour = projects.hour and pages.domain_code = projects.domain_code
where pages.hour in (select hour from loaded_hours)
  and pages.views != projects.views
  and not (pages.domain_code = '' and projects.views = 0)
