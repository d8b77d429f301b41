"""Lints and renders a Helm chart offline with helm-python-sdk (Helm's Go SDK over ctypes; no
helm binary), as `helm lint --strict` and `helm template` do, for tests/deploy.rs.

    python helm_chart.py CHART_DIR OUT_DIR RELEASE '{"values": "as JSON"}'

Writes every rendered Kubernetes object to OUT_DIR/<n>-<kind>-<name>.yaml (one document per file)
and prints one JSON object: {"lint": <helm's lint report>, "objects": [{"file", "template",
"kind", "apiVersion", "name", "object"}]}.
"""

import json
import os
import sys

import helm_python as helm
import yaml


def main() -> None:
    chart_dir, out_dir, release, values_json = sys.argv[1:5]
    values = json.loads(values_json)
    report = helm.lint(chart_dir, values, strict=True, kube_version="v1.30.0")
    objects = []
    with helm.Chart.load(chart_dir) as chart:
        rendered = chart.render(values, name=release, namespace="bench", is_install=True)
    for template, text in sorted(rendered.items()):
        # NOTES.txt is printed by helm install, never applied; partials render to nothing.
        if not template.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            path = os.path.join(
                out_dir,
                f"{len(objects):02d}-{doc['kind'].lower()}-{doc['metadata']['name']}.yaml",
            )
            with open(path, "w", encoding="utf-8") as f:
                yaml.safe_dump(doc, f, sort_keys=False)
            objects.append(
                {
                    "file": path,
                    "template": template,
                    "kind": doc["kind"],
                    "apiVersion": doc["apiVersion"],
                    "name": doc["metadata"]["name"],
                    "object": doc,
                }
            )
    json.dump({"lint": report, "objects": objects}, sys.stdout)


if __name__ == "__main__":
    main()
