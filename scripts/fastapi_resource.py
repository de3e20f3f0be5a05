"""GET /resource as Tracardi's own Python microservices serve it: FastAPI on uvicorn.

The yardstick for the speed of Tracardi's stack in scripts/bench-resource.sh: the same JSON
document as tracardi-twitter's GET /resource (read at start from the file named by
RESOURCE_JSON), returned as a dict the FastAPI way (serialised per request by FastAPI's
JSONResponse).

    RESOURCE_JSON=form.json uvicorn --app-dir scripts fastapi_resource:app --port 20903
"""

import json
import os

from fastapi import FastAPI

with open(os.environ["RESOURCE_JSON"], encoding="utf-8") as form_file:
    FORM = json.load(form_file)

app = FastAPI()


@app.get("/resource")
async def resource() -> dict:
    return FORM
