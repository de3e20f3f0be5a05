"""What this project asks of docker-compose.yml, beyond the Compose schema.

    python scripts/compose_rules.py docker-compose.yml

Every image tag is pinned (a tag, not `latest`), every service has a restart policy, every
`depends_on` names a service of the file, a `service_healthy` condition waits on a service that
has a healthcheck, and Tracardi's API waits for a healthy Elasticsearch. Prints each finding and
exits 1 when there is one. Run by scripts/lint-docker.sh, with the YAML parser that
check-jsonschema brings (ruamel.yaml).
"""

import sys

from ruamel.yaml import YAML


def findings(compose):
    services = compose.get("services") or {}
    if not services:
        yield "no services"
    for name, service in services.items():
        image = service.get("image")
        if image is None:
            if "build" not in service:
                yield f"{name}: neither image nor build"
        else:
            # The tag follows the last ':' after the last '/' (a registry may carry a port).
            last = image.rsplit("/", 1)[-1]
            tag = last.split(":", 1)[1] if ":" in last else None
            if "@sha256:" in image:
                pass
            elif tag is None:
                yield f"{name}: image {image} has no tag: pin one"
            elif tag == "latest":
                yield f"{name}: image {image} uses latest: pin a version"
        if not service.get("restart"):
            yield f"{name}: no restart policy (e.g. restart: unless-stopped)"
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {target: {"condition": "service_started"} for target in depends}
        for target, how in depends.items():
            if target not in services:
                yield f"{name}: depends_on {target}, which is not a service here"
                continue
            condition = (how or {}).get("condition", "service_started")
            if condition == "service_healthy" and "healthcheck" not in services[target]:
                yield f"{name}: waits for {target} to be healthy, but {target} has no healthcheck"
    api = services.get("tracardi-api")
    if api is not None:
        depends = api.get("depends_on") or {}
        how = depends.get("elasticsearch") if isinstance(depends, dict) else None
        if (how or {}).get("condition") != "service_healthy":
            yield "tracardi-api: must wait for elasticsearch with condition: service_healthy"


def main(path):
    with open(path, encoding="utf-8") as file:
        compose = YAML(typ="safe").load(file)
    found = list(findings(compose))
    for finding in found:
        print(f"{path}: {finding}")
    if found:
        return 1
    print(f"{path}: images pinned, restart policies set, dependencies wait as they should")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docker-compose.yml"))
