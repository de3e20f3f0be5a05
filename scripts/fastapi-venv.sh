#!/usr/bin/env bash
# Sourced by scripts/bench-resource.sh: a virtualenv under ~/.cache with FastAPI and uvicorn
# pinned, made once; sets $FASTAPI_VENV. uvicorn picks uvloop and httptools when they are
# installed, as `uvicorn[standard]` (what Tracardi's images run) installs them.
FASTAPI_VENV=${FASTAPI_VENV:-$HOME/.cache/tracardi-twitter-fastapi}
if [[ ! -x $FASTAPI_VENV/bin/uvicorn ]]; then
    echo "== making $FASTAPI_VENV (FastAPI + uvicorn, pinned)"
    python3 -m venv "$FASTAPI_VENV"
    "$FASTAPI_VENV/bin/pip" install -q fastapi==0.163.2 uvicorn==0.54.0 uvloop==0.23.0 httptools==0.9.0
fi
