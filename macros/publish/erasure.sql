{#-
  Erased keys stay erased: a snapshot pre-hook (dbt_project.yml, after fs_publish_gate) that sets the feature values of
  erased entities (fs_meta.erased_keys, written by `fs erase`, fs_cli/erasure.py) to NULL in the candidate -- and in
  the audited copy `fs run` asked to publish -- right before the snapshot reads it.

  Why in the publish and not in the models: upstream sources may still hold the entity; whatever a model builds, the
  snapshot then compares the erased rows (NULL values, same key) with its own redacted rows, finds them unchanged and
  writes nothing: no value comes back and no commit is added. Runs under `fs run` and plain `dbt snapshot` alike.
  Feature values = every candidate column outside the snapshot's unique key. Key text: the join keys cast to text,
  joined with '|' (fs_cli/erasure.py KEY_SEPARATOR).
-#}
{% macro fs_publish_redact_erased() %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set fg_node = fs_publish_feature_group_node(model) -%}
    {%- if fg_node is none -%}{{ return('') }}{%- endif -%}
    {%- set erased = adapter.get_relation(database=target.get('database'), schema='fs_meta',
                                          identifier='erased_keys') -%}
    {%- if erased is none -%}{{ return('') }}{%- endif -%}
    {%- set meta = (fg_node.config or {}).get('meta') or fg_node.get('meta') or {} -%}
    {%- set entities = var('fs_entities', {}) -%}
    {%- set unique_key = model.config.get('unique_key') or [] -%}
    {%- set unique_key = [unique_key] if unique_key is string else unique_key -%}
    {%- set key_names = unique_key | map('lower') | list -%}
    {%- set relations = [api.Relation.create(database=fg_node.database, schema=fg_node.schema,
                                             identifier=fg_node.alias)] -%}
    {%- set audited = fs_publish_request().get('audited', {}).get(fg_node.unique_id) -%}
    {%- if audited -%}
        {%- do relations.append(api.Relation.create(database=fg_node.database, schema=fg_node.schema,
                                                    identifier=audited)) -%}
    {%- endif -%}
    {%- for entity in (meta.get('fs') or {}).get('entities') or [] -%}
        {%- set join_keys = (entities.get(entity) or {}).get('join_keys') or [] -%}
        {%- if join_keys -%}
            {%- set parts = [] -%}
            {%- for k in join_keys -%}
                {%- if parts %}{% do parts.append("'|'") %}{% endif -%}
                {%- do parts.append('cast(' ~ adapter.quote(k) ~ ' as ' ~ dbt.type_string() ~ ')') -%}
            {%- endfor -%}
            {%- set key_text = parts[0] if parts | length == 1 else dbt.concat(parts) -%}
            {%- for rel in relations -%}
                {%- if adapter.get_relation(database=rel.database, schema=rel.schema,
                                            identifier=rel.identifier) is not none -%}
                    {%- set values = [] -%}
                    {%- for c in adapter.get_columns_in_relation(rel) -%}
                        {%- if c.name | lower not in key_names -%}
                            {%- do values.append(adapter.quote(c.name) ~ ' = null') -%}
                        {%- endif -%}
                    {%- endfor -%}
                    {%- if values -%}
                        {%- do run_query('update ' ~ rel ~ ' set ' ~ values | join(', ') ~ ' where ' ~ key_text
                                         ~ " in (select key_text from " ~ erased ~ " where entity = '"
                                         ~ entity | replace("'", "''") ~ "')") -%}
                    {%- endif -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return('') }}
{% endmacro %}
