"""The chart runs two of each service where that is safe by default: the edge, moderation and
chat-history under a CPU HorizontalPodAutoscaler (2..N), two host-agent workers (LiveKit spreads
the jobs), one chat-bridge, and the stage producer at one unless its replicas share their
assets (a second replica with a pod-local asset folder would make the edge's /media/ miss)."""

from __future__ import annotations

from typing import Any

from tests.ops.test_helm import (
    AUTOSCALED,
    component,
    of_kind,
    refusal,
    render,
)


def deployments(docs: list[dict[str, Any]] | tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {component(d): d for d in of_kind("Deployment", docs)}


def test_two_of_each_scaled_service_by_default_and_an_hpa_on_cpu_for_the_busy_ones() -> None:
    by_name = deployments()
    assert by_name["host-agent"]["spec"]["replicas"] == 2
    assert by_name["chat-bridge"]["spec"]["replicas"] == 1
    assert by_name["stage-producer"]["spec"]["replicas"] == 1
    hpas = {component(h): h for h in of_kind("HorizontalPodAutoscaler")}
    assert set(hpas) == AUTOSCALED == {"token", "moderation", "chat-history"}
    for hpa in hpas.values():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["minReplicas"] == 2
        assert hpa["spec"]["maxReplicas"] > 2
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"]["type"] == "Utilization"


def test_hpas_off_gives_fixed_replicas() -> None:
    docs = render(*(f"services.{name}.autoscaling.enabled=false" for name in sorted(AUTOSCALED)))
    assert of_kind("HorizontalPodAutoscaler", docs) == []
    by_name = deployments(docs)
    for name in AUTOSCALED:
        assert by_name[name]["spec"]["replicas"] == 2


def test_two_stage_producers_share_one_asset_claim() -> None:
    docs = render(
        "services.stage-producer.replicas=2", "services.stage-producer.assetsClaim=assets-rwx"
    )
    stage = deployments(docs)["stage-producer"]
    assert stage["spec"]["replicas"] == 2
    volumes = {v["name"]: v for v in stage["spec"]["template"]["spec"]["volumes"]}
    assert volumes["assets"]["persistentVolumeClaim"] == {"claimName": "assets-rwx"}
    # one replica keeps its pod-local folder
    (one,) = [v for v in deployments()["stage-producer"]["spec"]["template"]["spec"]["volumes"]
              if v["name"] == "assets"]  # fmt: skip
    assert one == {"name": "assets", "emptyDir": {}}


def test_a_second_stage_producer_without_shared_assets_is_refused() -> None:
    assert "services.stage-producer.assetsClaim" in refusal("services.stage-producer.replicas=2")
