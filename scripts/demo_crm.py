#!/usr/bin/python3
"""make run: writes the demo's agent config with the test CRM (tests/crm/crm_server.mjs) as its
postcall.crm, so that a call made in the console shows up on /dashboard as a lead in the CRM.

    scripts/demo_crm.py OUT.json NODE

The built-in demo (agents/config/agentcfg_demo.c, a C string of the JSON) is read from the
source so that the two never drift; the CRM keeps its contacts in crm.json next to OUT.json."""
import json
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def demo_config():
    with open(os.path.join(REPO, "agents", "config", "agentcfg_demo.c"), encoding="utf-8") as f:
        src = f.read()
    body = src[src.index("agentcfg_demo_json[] ="):]
    body = body[:body.index(";\n")]
    text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body))
    return json.loads(text.encode("utf-8").decode("unicode_escape").encode("latin-1")
                      .decode("utf-8"))


def main():
    out, node = sys.argv[1], sys.argv[2]
    cfg = demo_config()
    cfg.setdefault("mcpServers", {})["crm"] = {
        "command": node, "args": [os.path.join(REPO, "tests", "crm", "crm_server.mjs")],
        "env": {"CRM_STATE": os.path.join(os.path.dirname(os.path.abspath(out)), "crm.json")}}
    cfg["postcall"] = {"crm": "crm"}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)


if __name__ == "__main__":
    main()
