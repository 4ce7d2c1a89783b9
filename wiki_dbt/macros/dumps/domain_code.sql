{#- The pageviews dumps' domain_code decoded (shared/data/dumps-format.md §1):
    `ident` [`.m` mobile] [`.suffix`]. Three shapes:
    - a wikimedia.org name (commons, meta, ...): `commons.m` is desktop (the suffix `.m`
      is wikimedia.org), `commons.m.m` mobile;
    - a bare host (wikidata.org, mediawiki.org, wikisource.org, wikimediafoundation.org):
      ident `www` (desktop) or `m` (mobile), then the suffix: `www.wd`, `m.wd`;
    - everything else: a language, `.m` or the pre-2019 `.zero` for mobile, then the
      family suffix (none = Wikipedia): `en`, `en.m`, `en.m.d`, `fr.voy`.
    The empty code (a NULL in the files, printed `""`) is Wikifunctions (unconfirmed).
    Each macro returns one expression over a column holding the code. -#}

{% macro dumps_wikimedia_names() -%}
    ('commons', 'meta', 'species', 'incubator', 'outreach', 'foundation', 'wikimania',
     'wikitech', 'strategy', 'usability', 'advisory')
{%- endmacro %}

{#- The code's parts as strings: ident (first label), the label after it, the rest.
    Only string functions, no arrays or tuples: on a LowCardinality column ClickHouse
    then computes the whole decoding once per distinct code of a block (a few hundred),
    not once per row (a million). -#}
{% macro dumps_ident(code) -%}
    substringIndex({{ code }}, '.', 1)
{%- endmacro %}

{% macro dumps_second(code) -%}
    substringIndex(substring({{ code }}, length({{ dumps_ident(code) }}) + 2), '.', 1)
{%- endmacro %}

{% macro dumps_third(code) -%}
    substring({{ code }}, length({{ dumps_ident(code) }}) + length({{ dumps_second(code) }}) + 3)
{%- endmacro %}

{% macro dumps_is_mobile(code) -%}
    multiIf(
        {{ code }} = '', 0,
        {{ dumps_ident(code) }} IN {{ dumps_wikimedia_names() }}, {{ code }} LIKE '%.m.m',
        {{ dumps_ident(code) }} IN ('www', 'm'), {{ dumps_ident(code) }} = 'm',
        {{ dumps_second(code) }} IN ('m', 'zero')
    )
{%- endmacro %}

{#- the family suffix: '' (Wikipedia), b, d, f, m (wikimedia.org), n, q, s, v, voy, w, wd -#}
{% macro dumps_suffix(code) -%}
    multiIf(
        {{ dumps_ident(code) }} IN {{ dumps_wikimedia_names() }}, 'm',
        {{ dumps_ident(code) }} IN ('www', 'm'), {{ dumps_second(code) }},
        {{ dumps_second(code) }} IN ('m', 'zero'), {{ dumps_third(code) }},
        {{ dumps_second(code) }}
    )
{%- endmacro %}

{% macro dumps_family(code) -%}
    multiIf(
        {{ code }} = '', 'wikifunctions',
        {{ dumps_suffix(code) }} = '', 'wikipedia',
        {{ dumps_suffix(code) }} = 'm', {{ dumps_ident(code) }},
        transform({{ dumps_suffix(code) }},
                  ['b', 'd', 'f', 'n', 'q', 's', 'v', 'voy', 'w', 'wd'],
                  ['wikibooks', 'wiktionary', 'foundation', 'wikinews', 'wikiquote',
                   'wikisource', 'wikiversity', 'wikivoyage', 'mediawiki', 'wikidata'],
                  'unknown')
    )
{%- endmacro %}

{#- the wiki's dbname as EventStreams writes it ('' for a code that maps to none) -#}
{% macro dumps_wiki(code) -%}
    multiIf(
        {{ code }} = '', 'wikifunctionswiki',
        {{ dumps_family(code) }} = 'unknown', '',
        {{ dumps_family(code) }} = 'wikidata', 'wikidatawiki',
        {{ dumps_family(code) }} = 'mediawiki', 'mediawikiwiki',
        {{ dumps_family(code) }} = 'foundation', 'foundationwiki',
        {{ dumps_ident(code) }} IN ('www', 'm'),
            concat({{ dumps_family(code) }} = 'wikisource' ? 'sources' : {{ dumps_ident(code) }}, 'wiki'),
        {{ dumps_suffix(code) }} = 'm',
            {{ dumps_ident(code) }} = 'wikitech' ? 'labswiki' : concat({{ dumps_ident(code) }}, 'wiki'),
        {{ dumps_ident(code) }} = 'be-tarask' AND {{ dumps_family(code) }} = 'wikipedia', 'be_x_oldwiki',
        {{ dumps_family(code) }} = 'wikipedia', concat(replaceAll({{ dumps_ident(code) }}, '-', '_'), 'wiki'),
        concat(replaceAll({{ dumps_ident(code) }}, '-', '_'), {{ dumps_family(code) }})
    )
{%- endmacro %}

{% macro dumps_access(code) -%}
    multiIf({{ code }} = '', 'unknown', {{ dumps_is_mobile(code) }}, 'mobile', 'desktop')
{%- endmacro %}

{#- The hour the views of a pageviews file happened in. The file name's hour is the END
    of the hour it covers (the documentation and the Oozie job, +1); whether the Spark
    port kept that is unconfirmed, so var('pageviews_file_hour') says which: `end`
    (default: views of pageviews-20261101-010000 happened 00:00-01:00) or `start`. -#}
{% macro pageviews_hour(file_hour) -%}
    {%- if var('pageviews_file_hour', 'end') == 'end' -%}
        ({{ file_hour }} - interval 1 hour)
    {%- elif var('pageviews_file_hour') == 'start' -%}
        {{ file_hour }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("var pageviews_file_hour must be 'end' or 'start'") }}
    {%- endif -%}
{%- endmacro %}

{#- Only what the ledger publishes: per file, the newest load that completed. -#}
{% macro dumps_visible() -%}
    load_id in (select load_id from {{ source('dumps', 'dumps_visible') }})
{%- endmacro %}

{#- a media file's type from its extension -#}
{% macro media_type(base_name) -%}
    multiIf(
        match({{ base_name }}, '(?i)\\.(jpe?g|png|gif|svg|tiff?|webp|xcf|bmp|djvu|pdf|ico)$'), 'image',
        match({{ base_name }}, '(?i)\\.(ogg|oga|mp3|wav|flac|opus|mid|midi)$'), 'audio',
        match({{ base_name }}, '(?i)\\.(webm|ogv|mpg|mpeg|mp4)$'), 'video',
        'other'
    )
{%- endmacro %}

{#- the hosting wiki of a mediacounts base_name: /{family}/{code}/... -#}
{% macro media_wiki(base_name) -%}
    multiIf(
        splitByChar('/', {{ base_name }})[2] IN ('wikipedia', 'wikimedia')
            AND length(splitByChar('/', {{ base_name }})) >= 4,
            concat(replaceAll(splitByChar('/', {{ base_name }})[3], '-', '_'), 'wiki'),
        splitByChar('/', {{ base_name }})[2] IN ('wikibooks', 'wikinews', 'wikiquote',
            'wikisource', 'wikiversity', 'wikivoyage', 'wiktionary')
            AND length(splitByChar('/', {{ base_name }})) >= 4,
            concat(replaceAll(splitByChar('/', {{ base_name }})[3], '-', '_'),
                   splitByChar('/', {{ base_name }})[2]),
        ''
    )
{%- endmacro %}

{#- The media traffic columns, summed (media_day_loads and the media_day view). -#}
{% macro media_traffic_sums() -%}
    {%- for column in ['bytes', 'transfers', 'original', 'transcoded_image', 'transcoded_audio',
                       'transcoded_video', 'referer_internal', 'referer_external',
                       'referer_unknown'] %}
        sum({{ column }}) as {{ column }},
    {%- endfor %}
{%- endmacro %}
