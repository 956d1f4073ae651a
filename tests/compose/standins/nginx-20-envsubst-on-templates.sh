#!/bin/sh
# As the official nginx image's 20-envsubst-on-templates.sh: every NGINX_ENVSUBST_TEMPLATE_DIR
# (/etc/nginx/templates) file ending in NGINX_ENVSUBST_TEMPLATE_SUFFIX (.template) is rendered by
# envsubst into NGINX_ENVSUBST_OUTPUT_DIR (/etc/nginx/conf.d) without the suffix; only variables
# that are set, and (NGINX_ENVSUBST_FILTER) whose names match that extended regular expression,
# are substituted.
set -e
template_dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
filter="${NGINX_ENVSUBST_FILTER:-}"
[ -d "$template_dir" ] || exit 0
defined_envs=$(printf '${%s} ' $(awk "END { for (name in ENVIRON) { print ( name ~ /${filter}/ ) ? name : \"\" } }" </dev/null))
find "$template_dir" -follow -type f -name "*$suffix" -print | while read -r template; do
    relative="${template#"$template_dir/"}"
    output="$output_dir/${relative%"$suffix"}"
    mkdir -p "$(dirname "$output")"
    echo "$0: running envsubst on $template to $output"
    envsubst "$defined_envs" <"$template" >"$output"
done
