"""Checks the deployment files in deploy/ (run by ci/deploy-check.sh inside its venv).

- deploy/k8s/kustomization.yaml: every resource and generated file it lists exists and
  every YAML document in them parses.
- Kubernetes kinds: validated strictly (unknown fields refused) against the API schemas of
  Kubernetes 1.31 with kubernetes-validate.
- Agones kinds (Fleet, FleetAutoscaler): validated against deploy/k8s/schemas (JSON
  Schema written here from the Agones reference); the pod template inside a Fleet is
  validated as a Kubernetes PodTemplate.
- Every MMO_* environment variable the manifests set is one mmo-server reads (its
  settings table in rust/server/src/config.rs), so a typo cannot pass silently.
- The checks can fail: a copy of the manifests with one unknown field and one misspelled
  variable must be refused, or this script fails.

Exit status 0 when everything passes; otherwise 1, naming each file, object and problem.
"""

import copy
import json
import pathlib
import re
import subprocess
import sys
import tempfile

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.31"
AGONES_SCHEMAS = {
    ("agones.dev/v1", "Fleet"): K8S / "schemas" / "agones-fleet-v1.json",
    ("autoscaling.agones.dev/v1", "FleetAutoscaler"): K8S
    / "schemas"
    / "agones-fleetautoscaler-v1.json",
}


def known_variables():
    """The MMO_* names in mmo-server's settings table."""
    text = (ROOT / "rust" / "server" / "src" / "config.rs").read_text()
    return set(re.findall(r"`(MMO_[A-Z0-9_]+)`", text))


def load_documents():
    """(file name, document) of every resource kustomization.yaml lists."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    problems = []
    documents = []
    for generator in kustomization.get("configMapGenerator", []):
        for name in generator.get("files", []):
            if not (K8S / name).is_file():
                problems.append(f"kustomization.yaml: generated file {name} does not exist")
    for name in kustomization.get("resources", []):
        path = K8S / name
        if not path.is_file():
            problems.append(f"kustomization.yaml: resource {name} does not exist")
            continue
        try:
            for document in yaml.safe_load_all(path.read_text()):
                if document is not None:
                    documents.append((name, document))
        except yaml.YAMLError as e:
            problems.append(f"{name}: not YAML: {e}")
    return documents, problems


def env_names(node):
    """Every `env[].name` under a document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "env" and isinstance(value, list):
                for entry in value:
                    if isinstance(entry, dict) and "name" in entry:
                        yield entry["name"]
            else:
                yield from env_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from env_names(item)


def kubernetes_validate(documents, scratch):
    """Problems kubernetes-validate finds in `documents` (name, document)."""
    if not documents:
        return []
    path = pathlib.Path(scratch) / "kubernetes.yaml"
    path.write_text(yaml.safe_dump_all([d for _, d in documents]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubernetes_validate",
            "--strict",
            "--quiet",
            "-k",
            KUBERNETES_VERSION,
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode == 0:
        return []
    names = ", ".join(sorted({n for n, _ in documents}))
    return [f"kubernetes-validate ({names}): {result.stdout.strip()} {result.stderr.strip()}"]


def check(documents):
    """Every problem of `documents`; empty when they pass."""
    problems = []
    variables = known_variables()
    kubernetes = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, document in documents:
            what = f"{name}: {document.get('kind')}/{document.get('metadata', {}).get('name')}"
            for variable in env_names(document):
                if variable.startswith("MMO_") and variable not in variables:
                    problems.append(f"{what}: mmo-server reads no variable {variable}")
            schema_path = AGONES_SCHEMAS.get((document.get("apiVersion"), document.get("kind")))
            if schema_path is None:
                if "agones.dev" in str(document.get("apiVersion")):
                    problems.append(f"{what}: no schema for this Agones kind")
                kubernetes.append((name, document))
                continue
            schema = json.loads(schema_path.read_text())
            for error in jsonschema.Draft7Validator(schema).iter_errors(document):
                path = "/".join(str(p) for p in error.absolute_path)
                problems.append(f"{what}: {path}: {error.message}")
            pod = (
                document.get("spec", {}).get("template", {}).get("spec", {}).get("template")
            )
            if document.get("kind") == "Fleet" and pod is not None:
                kubernetes.append(
                    (
                        name,
                        {
                            "apiVersion": "v1",
                            "kind": "PodTemplate",
                            "metadata": {"name": document["metadata"]["name"]},
                            "template": pod,
                        },
                    )
                )
        problems += kubernetes_validate(kubernetes, scratch)
    return problems


def broken(documents):
    """A copy with an unknown field in the first Deployment and in the first Fleet, and
    a misspelled variable."""
    documents = copy.deepcopy(documents)
    for _, document in documents:
        if document.get("kind") == "Deployment":
            document["spec"]["replica"] = 2
            document["spec"]["template"]["spec"]["containers"][0]["env"].append(
                {"name": "MMO_NATS_ULR", "value": "x"}
            )
            break
    for _, document in documents:
        if document.get("kind") == "Fleet":
            document["spec"]["template"]["spec"]["health"]["periodSecond"] = 5
            break
    return documents


def main():
    documents, problems = load_documents()
    problems += check(documents)
    for problem in problems:
        print(f"FAIL {problem}")
    refused = check(broken(documents))
    expected = ["'replica'", "MMO_NATS_ULR", "'periodSecond'"]
    missed = [e for e in expected if not any(e in p for p in refused)]
    if missed:
        print(f"FAIL the checks let a broken copy through (not caught: {missed})")
        problems.append("self-test")
    kinds = sorted({f"{d.get('kind')}" for _, d in documents})
    print(f"deploy check: {len(documents)} objects ({', '.join(kinds)}), "
          f"{len(problems)} problems; the broken copy was refused for {len(refused)} reasons")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
