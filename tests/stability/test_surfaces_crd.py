"""CRD surfaces: hand-written CustomResourceDefinitions that hit every rule, per API version
tier, from files, directories, source trees and git refs."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from surfaces_helpers import V1, write_tree

from dynconform.cli import main
from dynconform.contracts import InputError
from dynconform.stability import (
    ApiReport,
    Status,
    SurfaceSnapshot,
    Tier,
    collect_crds,
    diff_crds,
    judge_history,
    judge_surfaces,
    snapshot_surfaces,
)

CRDS = Path(__file__).parents[1] / "fixtures" / "surfaces" / "crds"
R1, R2 = CRDS / "widgets-r1.yaml", CRDS / "widgets-r2.yaml"
V = "crd:Widget.v1"


def test_read_versions_fields_and_markers() -> None:
    widget = collect_crds([R1])["Widget"]
    assert (widget.group, widget.plural, widget.scope) == ("demo.dev", "widgets", "Namespaced")
    assert widget.storage_version == "v1beta1"
    assert {n: v.tier for n, v in widget.versions.items()} == {
        "v1": Tier.STABLE,
        "v1beta1": Tier.BETA,
        "v1alpha1": Tier.EXPERIMENTAL,
    }
    beta = widget.versions["v1beta1"]
    assert beta.deprecated
    assert "use demo.dev/v1" in (beta.deprecation_warning or "")
    fields = widget.versions["v1"].fields
    assert fields["spec.size"].required
    assert fields["spec.size"].type == "integer"
    assert fields["spec.color"].enum == ("red", "green", "blue")
    assert fields["spec.legacy"].deprecated
    assert not fields["spec.mode"].deprecated
    assert fields["spec.ports[]"].type == "object"
    assert fields["spec.ports[].port"].type == "integer"
    assert fields["spec.labels.*"].type == "string"
    assert fields["spec.limits.cpu"].type == "int-or-string"
    # A Helm template (directive lines, inline expressions) still parses.
    assert set(collect_crds([R2])) == {"Widget", "Gadget"}


def test_every_rule() -> None:
    old, new = snapshot_surfaces(str(R1)), snapshot_surfaces(str(R2))
    got = {(f.kind, f.path, f.message) for f in diff_crds(old.crds, new.crds)}
    assert got == {
        ("surface-removed", f"{V}.spec.mode", "field removed"),
        ("surface-removed", f"{V}.spec.legacy", "field removed"),
        ("crd-type-changed", f"{V}.spec.size", "type changed"),
        ("crd-enum-removed", f"{V}.spec.color", "enum values removed: blue"),
        ("crd-enum-added", f"{V}.spec.color", "enum values added: yellow"),
        ("surface-added", f"{V}.spec.limits.memory", "field added (required)"),
        (
            "crd-required-added",
            f"{V}.spec.limits.memory",
            "new required field in an existing object",
        ),
        ("crd-required-added", f"{V}.spec.ports[].name", "field became required"),
        ("surface-added", f"{V}.spec.ports[].protocol", "field added"),
        ("surface-added", f"{V}.spec.extra", "field added"),  # new object: its required id is fine
        ("crd-enum-removed", f"{V}.status.phase", "values now restricted to Pending, Ready"),
        ("surface-removed", "crd:Widget.v1beta1", "version no longer served"),
        ("surface-removed", "crd:Widget.v1alpha1", "version removed"),
        ("crd-storage-changed", "crd:Widget", "storage version changed"),
        ("surface-added", "crd:Gadget", "CRD added (v1alpha1)"),
    }
    report = judge_surfaces(old, new)
    status = {(f.kind, f.path): f.status for f in report.findings}
    assert status[("crd-type-changed", f"{V}.spec.size")] is Status.VIOLATION
    assert status[("surface-removed", "crd:Widget.v1alpha1")] is Status.REPORTED  # alpha
    assert status[("crd-enum-added", f"{V}.spec.color")] is Status.INFO
    # Deprecated one release before; crd periods are 3 releases (stable and beta) by default.
    legacy = next(f for f in report.findings if f.path == f"{V}.spec.legacy")
    assert legacy.status is Status.VIOLATION
    assert "stable crd needs" in legacy.reason
    assert status[("surface-removed", "crd:Widget.v1beta1")] is Status.VIOLATION
    lenient = judge_surfaces(old, new, kind_periods={"crd": {Tier.STABLE: 1, Tier.BETA: 1}})
    allowed = {f.path for f in lenient.findings if f.status is Status.ALLOWED}
    assert allowed == {f"{V}.spec.legacy", "crd:Widget.v1beta1"}
    assert report.summary()["stable"]["violation"] == 7


def test_cli_crd_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "crds.json"
    assert main(["surfaces", "snapshot", str(R1), "-o", str(out)]) == 0
    assert "1 CRDs" in capsys.readouterr().err
    data = json.loads(out.read_text())
    assert data["crds"]["Widget"]["storageVersion"] == "v1beta1"
    assert main(["surfaces", "diff", str(out), str(R2)]) == 1
    text = capsys.readouterr().out
    assert "crd-type-changed" in text
    assert "FAIL" in text
    assert main(["surfaces", "diff", str(out), str(R1)]) == 0
    capsys.readouterr()
    # A Python source tree picks up CRDs under crds/, and --crd adds more.
    files = dict(V1)
    files["deploy/crds/widgets.yaml"] = R1.read_text()
    root = write_tree(tmp_path / "tree", files)
    assert set(snapshot_surfaces(str(root)).crds) == {"Widget"}
    assert main(["surfaces", "snapshot", str(root), "--crd", str(R2), "-o", str(out)]) == 0
    assert set(json.loads(out.read_text())["crds"]) == {"Widget", "Gadget"}
    empty = tmp_path / "cm.yaml"
    empty.write_text("apiVersion: v1\nkind: ConfigMap\n")
    assert main(["surfaces", "snapshot", str(empty)]) == 2
    assert "no apiextensions.k8s.io/v1 CustomResourceDefinition" in capsys.readouterr().err
    bad = tmp_path / "bad-crd.yaml"
    bad.write_text("kind: CustomResourceDefinition\n  a: [\n")
    with pytest.raises(InputError, match="not valid YAML"):
        collect_crds([bad])


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_refs_without_python(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    (repo / "config" / "crd").mkdir(parents=True)

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    target = repo / "config" / "crd" / "widgets.yaml"
    target.write_text(R1.read_text())
    git("add", ".")
    git("commit", "-qm", "r1")
    target.write_text(R2.read_text())
    git("commit", "-qam", "r2")
    code = main(
        [
            "surfaces",
            "diff",
            "git:HEAD~1",
            "git:HEAD:config",
            "--repo",
            str(repo),
            "--format",
            "json",
        ]
    )
    assert code == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    kinds = {(f["kind"], f["path"]) for f in findings}
    assert ("crd-type-changed", f"{V}.spec.size") in kinds
    assert ("surface-added", "crd:Gadget") in kinds


def test_enum_restriction_lifted() -> None:
    old = collect_crds([R1])
    new = copy.deepcopy(old)
    new["Widget"].versions["v1"].fields["spec.color"].enum = None
    got = {(f.kind, f.path, f.message) for f in diff_crds(old, new)}
    assert got == {("crd-enum-added", f"{V}.spec.color", "values no longer restricted")}


def test_deprecated_list_field_covers_its_items() -> None:
    """Removing a field of the items of a deprecated list is covered by that deprecation."""
    old = SurfaceSnapshot("crds", version="1", crds=collect_crds([R1]))
    new = SurfaceSnapshot("crds", version="2", crds=copy.deepcopy(old.crds))
    del new.crds["Widget"].versions["v1"].fields["spec.ports[].port"]
    lenient = {"crd": {Tier.STABLE: 1}}
    path = f"{V}.spec.ports[].port"
    assert _status(judge_surfaces(old, new, kind_periods=lenient), path) is Status.VIOLATION
    old.crds["Widget"].versions["v1"].fields["spec.ports"].deprecated = True
    assert _status(judge_surfaces(old, new, kind_periods=lenient), path) is Status.ALLOWED
    history = judge_history([old, new], kind_periods=lenient).history
    assert sorted(history.first_seen) == [
        f"{V}.spec.legacy",
        f"{V}.spec.ports",
        "crd:Widget.v1beta1",
    ]


def _status(report: ApiReport, path: str) -> Status:
    (finding,) = [f for f in report.findings if f.path == path]
    return finding.status


def test_the_same_crd_in_two_places_is_listed_once(tmp_path: Path) -> None:
    for where in ("chart/crds", "operator/config/crd"):
        (tmp_path / where).mkdir(parents=True)
        shutil.copy(R1, tmp_path / where / "widgets.yaml")
    other = R1.read_text().replace("group: demo.dev", "group: other.dev")
    (tmp_path / "operator" / "config" / "crd" / "other.yaml").write_text(other)
    crds = collect_crds([tmp_path])
    assert sorted(crds) == ["Widget", "other.dev/Widget"]
    assert crds["Widget"].location == "chart/crds/widgets.yaml"
    assert crds["other.dev/Widget"].group == "other.dev"
